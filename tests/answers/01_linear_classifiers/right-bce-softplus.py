# right: another formula, -log sigma(o) = softplus(-o), computed in float64
# %% bce
def binary_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy of eq. 2 between logits o and labels y in {0, 1}."""
    o, y = logits.double(), targets.double()
    return (y * F.softplus(-o) + (1 - y) * F.softplus(o)).mean()
