# wrong: log(sigmoid(o)) and log(1 - sigmoid(o)) as eq. 2 writes them, inf for large |o|
# feedback: finite
# %% bce
def binary_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy of eq. 2 between logits o and labels y in {0, 1}."""
    p = torch.sigmoid(logits)
    return -(targets * torch.log(p) + (1 - targets) * torch.log(1 - p)).mean()
