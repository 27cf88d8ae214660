# wrong, visibly: the classifier's weight_images() as they come, [1, 1, 28, 28]
# feedback: 28×28 image
# %% weights
def weight_image(model: models.LinearClassifier) -> torch.Tensor:
    """The weights of a binary LinearClassifier as a 28x28 image (row-major pixels)."""
    return model.weight_images()
