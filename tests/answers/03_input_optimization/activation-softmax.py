# wrong, visibly: the probability after the softmax, not the logit
# feedback: no softmax
# %% activation
def neuron_activation(model: torch.nn.Module, x: torch.Tensor, neuron: int) -> torch.Tensor:
    """The logit y_neuron = f(x, theta)[neuron] of every image in the batch x, shape [N]."""
    return model(x).softmax(dim=1)[:, neuron]
