# right: the classifier's own weight_images, first (and only) output
# %% weights
def weight_spectra(model: models.LinearClassifier) -> torch.Tensor:
    """The weights of a binary LinearClassifier on [3, 32, 32] inputs, as [3, 32, 32]."""
    return model.weight_images()[0]
