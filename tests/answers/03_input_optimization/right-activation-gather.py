# right: gather with an index tensor on the images' device
# %% activation
def neuron_activation(model: torch.nn.Module, x: torch.Tensor, neuron: int) -> torch.Tensor:
    """The logit y_neuron = f(x, theta)[neuron] of every image in the batch x, shape [N]."""
    index = torch.full((len(x), 1), neuron, dtype=torch.long, device=x.device)
    return model(x).gather(1, index).squeeze(1)
