# wrong, visibly: no renormalisation
# feedback: normalise
# %% ascent
def favourite_input(
    model: torch.nn.Module,
    neuron: int,
    start: torch.Tensor,
    steps: int = 100,
    step_size: float = 1.0,
) -> torch.Tensor:
    """Gradient ascent on the input from `start`, mu-sigma normalised after every step."""
    x = start.to(next(model.parameters()).device)
    for _ in range(steps):
        x = x.detach().requires_grad_(True)
        (gradient,) = torch.autograd.grad(model(x)[:, neuron].sum(), x)
        x = x.detach() + step_size * gradient
    return x.detach()
