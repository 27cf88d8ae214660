# wrong, visibly: summed over the batch, one number instead of one logit per image
# feedback: one logit per image
# %% activation
def neuron_activation(model: torch.nn.Module, x: torch.Tensor, neuron: int) -> torch.Tensor:
    """The logit y_neuron = f(x, theta)[neuron] of every image in the batch x, shape [N]."""
    return model(x)[:, neuron].sum()
