# wrong, visibly: the gradient of the probability after the softmax, not of the score
# feedback: before the softmax
# %% saliency
def saliency_map(model, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """max over channels of |dS_target / dI| for each image: [N, C, H, W] -> [N, H, W]."""
    images = images.detach().clone().requires_grad_(True)
    probabilities = model(images).softmax(dim=1)
    (gradient,) = torch.autograd.grad(probabilities.gather(1, targets.view(-1, 1)).sum(), images)
    return gradient.abs().amax(dim=1)
