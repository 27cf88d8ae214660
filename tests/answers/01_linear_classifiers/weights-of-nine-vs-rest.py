# wrong, visibly: the weights of nine_vs_rest, whatever model it is given
# feedback: model it is given
# %% weights
def weight_image(model: models.LinearClassifier) -> torch.Tensor:
    """The weights of a binary LinearClassifier as a 28x28 image (row-major pixels)."""
    return nine_vs_rest.linear.weight.detach().reshape(28, 28)
