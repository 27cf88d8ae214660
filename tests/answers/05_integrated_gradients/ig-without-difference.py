# wrong, visibly: the mean gradient without the factor (x - x')
# feedback: (x - x')
# %% ig
def integrated_gradients(
    model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor, steps: int = 50
) -> torch.Tensor:
    """Integrated gradients of eq. 5 with the black baseline, for each image's target."""
    total = torch.zeros_like(images)
    for k in range(1, steps + 1):
        points = (k / steps * images).requires_grad_(True)
        outputs = model(points).gather(1, targets[:, None])
        (gradient,) = torch.autograd.grad(outputs.sum(), points)
        total += gradient
    return total / steps
