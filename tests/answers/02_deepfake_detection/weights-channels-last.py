# wrong, visibly: read as channels last, [32, 32, 3], then moved to the front
# feedback: channel, row, column
# %% weights
def weight_spectra(model: models.LinearClassifier) -> torch.Tensor:
    """The weights of a binary LinearClassifier on [3, 32, 32] inputs, as [3, 32, 32]."""
    return model.linear.weight.detach().reshape(32, 32, 3).permute(2, 0, 1)
