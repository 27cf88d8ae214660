# wrong: the course's lib.attribution.saliency_map, which the task forbids
# feedback: course's
# %% saliency
def saliency_map(model, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """max over channels of |dS_target / dI| for each image: [N, C, H, W] -> [N, H, W]."""
    from lib import attribution

    return attribution.saliency_map(model, images, targets)
