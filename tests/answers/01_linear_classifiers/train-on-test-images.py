# wrong: trains on the test images (the names mixed up), not on the images it is given
# feedback: images and labels it is given
# %% train
def train_nine_vs_rest(images: torch.Tensor, labels: torch.Tensor) -> models.LinearClassifier:
    """A LinearClassifier trained on `images` to answer "is this a 9?" (digit `labels`)."""
    model, _ = train.train_cached(
        models.LinearClassifier,
        test_images,
        data.one_vs_rest(test_labels, 9),
        train.TrainConfig(),
        name="exercise-9-vs-rest",
    )
    return model
