# wrong: fc drawn afresh without the seed, other weights on every call
# feedback: a seed gives the same weights
# %% randomize
def randomize_top(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """A copy of the CNN whose top layer fc has new random weights."""
    randomized = copy.deepcopy(model)
    randomized.fc.reset_parameters()
    return randomized
