# wrong, visibly: no log, the magnitude |F| itself
# feedback: log(|F| + eps)
# %% fft
def log_spectrum(images: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """log(|F(I)| + eps) of each image and channel of a batch [N, C, H, W]."""
    return torch.fft.fft2(images, dim=(-2, -1)).abs() + eps
