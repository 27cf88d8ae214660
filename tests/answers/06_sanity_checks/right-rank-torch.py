# right: Spearman in torch, ties given their mean rank with searchsorted, no SciPy
# %% rank
def rank_correlation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman's rank correlation of each pair of maps a[i], b[i], shape [N]."""

    def ranks(values: torch.Tensor) -> torch.Tensor:
        ordered = values.sort(dim=1).values
        low = torch.searchsorted(ordered, values, right=False)
        high = torch.searchsorted(ordered, values, right=True)
        return (low + high + 1).double() / 2

    x, y = ranks(a.flatten(1).contiguous()), ranks(b.flatten(1).contiguous())
    x, y = x - x.mean(1, keepdim=True), y - y.mean(1, keepdim=True)
    return (x * y).sum(1) / (x.norm(dim=1) * y.norm(dim=1))
