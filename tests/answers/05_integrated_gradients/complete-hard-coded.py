# wrong, visibly: no error at all, as the exact integral would have
# feedback: whole change
# %% complete
def completeness_error(
    model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor, attributions: torch.Tensor
) -> torch.Tensor:
    """Sum of the attributions minus F(x) - F(0), one value per image."""
    return torch.zeros(len(images))
