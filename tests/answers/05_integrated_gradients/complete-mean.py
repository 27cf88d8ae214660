# wrong: the mean of the attributions where completeness needs their sum
# feedback: sum of the attributions
# %% complete
def completeness_error(
    model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor, attributions: torch.Tensor
) -> torch.Tensor:
    """Sum of the attributions minus F(x) - F(0), one value per image."""
    with torch.no_grad():
        ends = model(images) - model(torch.zeros_like(images))
    return attributions.flatten(1).mean(1) - ends.gather(1, targets[:, None]).squeeze(1)
