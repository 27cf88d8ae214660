# wrong, visibly: the first layer conv1 drawn afresh instead of the top layer fc
# feedback: below fc
# %% randomize
def randomize_top(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """A copy of the CNN whose top layer fc has new random weights."""
    randomized = copy.deepcopy(model)
    torch.manual_seed(seed)
    randomized.conv1.reset_parameters()
    return randomized
