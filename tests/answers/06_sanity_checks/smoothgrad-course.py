# wrong: the course's lib.attribution.smoothgrad, which the task forbids
# feedback: course's lib.attribution
# %% smoothgrad
def smoothgrad(
    model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor, noise: torch.Tensor
) -> torch.Tensor:
    """The mean gradient of each image's target logit over its noisy copies (eq. 6.1)."""
    from lib.attribution import smoothgrad as course_smoothgrad

    return course_smoothgrad(model, images, targets, noise=noise)
