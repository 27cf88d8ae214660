# right: computed with NumPy in float64
# %% fft
def log_spectrum(images: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """log(|F(I)| + eps) of each image and channel of a batch [N, C, H, W]."""
    spectrum = np.fft.fft2(images.detach().cpu().double().numpy(), axes=(-2, -1))
    return torch.from_numpy(np.log(np.abs(spectrum) + eps))
