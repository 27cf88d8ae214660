# right: one leaf image updated in place, gradients from .backward() and cleared every step
# %% ascent
def favourite_input(
    model: torch.nn.Module,
    neuron: int,
    start: torch.Tensor,
    steps: int = 100,
    step_size: float = 1.0,
) -> torch.Tensor:
    """Gradient ascent on the input from `start`, mu-sigma normalised after every step."""
    device = next(model.parameters()).device
    x = start.clone().to(device).requires_grad_(True)
    for _ in range(steps):
        x.grad = None
        neuron_activation(model, x, neuron).sum().backward()
        with torch.no_grad():
            x += step_size * x.grad
            x -= x.mean()
            x /= x.std(correction=0)
    return x.detach()
