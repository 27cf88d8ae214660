# right: all m points of all images in one batch, the gradients summed in float64
# %% ig
def integrated_gradients(
    model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor, steps: int = 50
) -> torch.Tensor:
    """Integrated gradients of eq. 5 with the black baseline, for each image's target."""
    n = len(images)
    alphas = torch.arange(1, steps + 1, dtype=images.dtype) / steps
    points = (alphas[:, None, None, None, None] * images[None]).reshape(-1, *images.shape[1:])
    points.requires_grad_(True)
    chosen = targets.repeat(steps)
    outputs = model(points).gather(1, chosen[:, None])
    (gradient,) = torch.autograd.grad(outputs.sum(), points)
    mean = gradient.reshape(steps, n, *images.shape[1:]).double().mean(dim=0)
    return (images.double() * mean).to(images.dtype)
