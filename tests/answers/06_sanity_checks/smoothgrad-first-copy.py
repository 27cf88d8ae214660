# wrong, visibly: only the first noisy copy of each image, the others never used
# feedback: over the k
# %% smoothgrad
def smoothgrad(
    model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor, noise: torch.Tensor
) -> torch.Tensor:
    """The mean gradient of each image's target logit over its noisy copies (eq. 6.1)."""
    points = (images + noise[:, 0]).requires_grad_(True)
    outputs = model(points).gather(1, targets[:, None])
    (gradient,) = torch.autograd.grad(outputs.sum(), points)
    return gradient
