# wrong, visibly: rows and columns swapped
# feedback: row-major
# %% weights
def weight_image(model: models.LinearClassifier) -> torch.Tensor:
    """The weights of a binary LinearClassifier as a 28x28 image (row-major pixels)."""
    return model.linear.weight.detach().reshape(28, 28).T
