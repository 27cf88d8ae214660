# wrong: not detached from the autograd graph, as the task asks
# feedback: detach
# %% weights
def weight_spectra(model: models.LinearClassifier) -> torch.Tensor:
    """The weights of a binary LinearClassifier on [3, 32, 32] inputs, as [3, 32, 32]."""
    return model.linear.weight.reshape(3, 32, 32)
