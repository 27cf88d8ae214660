# wrong, visibly: the sum of the gradients over the copies instead of their mean
# feedback: their mean
# %% smoothgrad
def smoothgrad(
    model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor, noise: torch.Tensor
) -> torch.Tensor:
    """The mean gradient of each image's target logit over its noisy copies (eq. 6.1)."""
    count, copies = noise.shape[:2]
    points = (images[:, None] + noise).flatten(0, 1).requires_grad_(True)
    outputs = model(points).gather(1, targets.repeat_interleave(copies)[:, None])
    (gradient,) = torch.autograd.grad(outputs.sum(), points)
    return gradient.view(count, copies, *images.shape[1:]).sum(dim=1)
