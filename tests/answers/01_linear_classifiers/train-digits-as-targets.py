# wrong, visibly: the digits 0 to 9 as targets instead of "is it a 9?"
# %% train
def train_nine_vs_rest(images: torch.Tensor, labels: torch.Tensor) -> models.LinearClassifier:
    """A LinearClassifier trained on `images` to answer "is this a 9?" (digit `labels`)."""
    model, _ = train.train_cached(models.LinearClassifier, images, labels, train.TrainConfig())
    return model
