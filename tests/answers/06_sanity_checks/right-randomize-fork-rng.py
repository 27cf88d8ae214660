# right: the seed set in a forked random state, so that torch's global generator is left as it was
# %% randomize
def randomize_top(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """A copy of the CNN whose top layer fc has new random weights."""
    randomized = copy.deepcopy(model)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        randomized.fc.reset_parameters()
    return randomized
