# wrong, visibly: the weights of detector, whatever model it is given
# feedback: model it is given
# %% weights
def weight_spectra(model: models.LinearClassifier) -> torch.Tensor:
    """The weights of a binary LinearClassifier on [3, 32, 32] inputs, as [3, 32, 32]."""
    return detector.linear.weight.detach().reshape(3, 32, 32)
