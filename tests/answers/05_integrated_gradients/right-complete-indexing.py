# right: the target logits picked by indexing, the sum over the pixels with sum(dim=(1, 2, 3))
# %% complete
def completeness_error(
    model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor, attributions: torch.Tensor
) -> torch.Tensor:
    """Sum of the attributions minus F(x) - F(0), one value per image."""
    rows = torch.arange(len(images))
    with torch.no_grad():
        change = model(images)[rows, targets] - model(torch.zeros_like(images))[rows, targets]
    return attributions.sum(dim=(1, 2, 3)) - change
