# wrong: ranks from a double argsort, so pixels of equal value are ranked by their position
# feedback: mean rank
# %% rank
def rank_correlation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman's rank correlation of each pair of maps a[i], b[i], shape [N]."""
    x = a.flatten(1).argsort(1).argsort(1).double()
    y = b.flatten(1).argsort(1).argsort(1).double()
    x, y = x - x.mean(1, keepdim=True), y - y.mean(1, keepdim=True)
    return (x * y).sum(1) / (x.norm(dim=1) * y.norm(dim=1))
