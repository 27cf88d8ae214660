# wrong, visibly: an fftshift where none belongs (the zero frequency moved to the centre)
# feedback: not shifted
# %% fft
def log_spectrum(images: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """log(|F(I)| + eps) of each image and channel of a batch [N, C, H, W]."""
    spectrum = torch.fft.fftshift(torch.fft.fft2(images), dim=(-2, -1))
    return torch.log(spectrum.abs() + eps)
