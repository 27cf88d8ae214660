# right: reshape without detach (the tensor still requires grad)
# %% weights
def weight_image(model: models.LinearClassifier) -> torch.Tensor:
    """The weights of a binary LinearClassifier as a 28x28 image (row-major pixels)."""
    return model.linear.weight.reshape(28, 28)
