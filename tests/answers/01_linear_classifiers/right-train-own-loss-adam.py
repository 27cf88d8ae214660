# right: its own binary_cross_entropy as the loss, Adam instead of SGD
# %% train
def train_nine_vs_rest(images: torch.Tensor, labels: torch.Tensor) -> models.LinearClassifier:
    """A LinearClassifier trained on `images` to answer "is this a 9?" (digit `labels`)."""
    config = train.TrainConfig(epochs=3, lr=1e-2, optimizer="adam")
    targets = (labels == 9).float()
    model, history = train.train_cached(
        models.LinearClassifier, images, targets, config, loss_fn=binary_cross_entropy
    )
    print(f"loss per epoch: {history}")
    return model
