# wrong: the course's frequency.log_spectrum, which the task forbids
# %% fft
def log_spectrum(images: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """log(|F(I)| + eps) of each image and channel of a batch [N, C, H, W]."""
    return frequency.log_spectrum(images, eps=eps)
