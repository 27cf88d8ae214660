# wrong, visibly: the absolute value taken after the maximum over the channels
# feedback: largest magnitude
# %% saliency
def saliency_map(model, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """max over channels of |dS_target / dI| for each image: [N, C, H, W] -> [N, H, W]."""
    images = images.detach().clone().requires_grad_(True)
    scores = model(images).gather(1, targets.view(-1, 1)).sum()
    (gradient,) = torch.autograd.grad(scores, images)
    return gradient.amax(dim=1).abs()
