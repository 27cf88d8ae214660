# wrong, visibly: the left Riemann sum, k = 0, ..., m - 1, instead of eq. 5's k = 1, ..., m
# feedback: k = 1, ..., m
# %% ig
def integrated_gradients(
    model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor, steps: int = 50
) -> torch.Tensor:
    """Integrated gradients of eq. 5 with the black baseline, for each image's target."""
    total = torch.zeros_like(images)
    for k in range(steps):
        points = (k / steps * images).requires_grad_(True)
        outputs = model(points).gather(1, targets[:, None])
        (gradient,) = torch.autograd.grad(outputs.sum(), points)
        total += gradient
    return images * total / steps
