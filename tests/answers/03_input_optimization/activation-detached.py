# wrong: computed under torch.no_grad(), so no gradient reaches the image
# feedback: does not require grad
# %% activation
def neuron_activation(model: torch.nn.Module, x: torch.Tensor, neuron: int) -> torch.Tensor:
    """The logit y_neuron = f(x, theta)[neuron] of every image in the batch x, shape [N]."""
    with torch.no_grad():
        return model(x)[:, neuron]
