# wrong, visibly: fc drawn afresh in the model itself, not in a copy
# feedback: as it was
# %% randomize
def randomize_top(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """A copy of the CNN whose top layer fc has new random weights."""
    torch.manual_seed(seed)
    model.fc.reset_parameters()
    return model
