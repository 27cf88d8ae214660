# wrong, visibly: one correlation over all the maps of the batch instead of one per pair
# feedback: one correlation per pair
# %% rank
def rank_correlation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman's rank correlation of each pair of maps a[i], b[i], shape [N]."""
    return torch.tensor(stats.spearmanr(a.flatten().tolist(), b.flatten().tolist())[0])
