# wrong, visibly: the gradient at the image itself, the noise never added
# feedback: noisy copies
# %% smoothgrad
def smoothgrad(
    model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor, noise: torch.Tensor
) -> torch.Tensor:
    """The mean gradient of each image's target logit over its noisy copies (eq. 6.1)."""
    points = images.clone().requires_grad_(True)
    outputs = model(points).gather(1, targets[:, None])
    (gradient,) = torch.autograd.grad(outputs.sum(), points)
    return gradient
