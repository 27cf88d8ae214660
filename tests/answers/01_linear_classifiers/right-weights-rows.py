# right: a loop over the rows, on the CPU
# %% weights
def weight_image(model: models.LinearClassifier) -> torch.Tensor:
    """The weights of a binary LinearClassifier as a 28x28 image (row-major pixels)."""
    weights = model.linear.weight.detach().cpu()[0]
    return torch.stack([weights[28 * row : 28 * (row + 1)] for row in range(28)])
