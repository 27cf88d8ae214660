# wrong: PyTorch's own binary cross-entropy, which the task forbids
# feedback: ready-made
# %% bce
def binary_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy of eq. 2 between logits o and labels y in {0, 1}."""
    return F.binary_cross_entropy_with_logits(logits, targets.float())
