# right: its own log_spectrum, the moments fed batch by batch, SGD with momentum
# %% train
def train_detector(
    images: torch.Tensor, labels: torch.Tensor
) -> tuple[models.LinearClassifier, frequency.RunningMoments]:
    """A linear detector of generated images (label 1) on standardised log-spectra of
    `images`, and the moments it standardised with."""
    features = log_spectrum(images).float()
    moments = frequency.RunningMoments()
    for batch in features.split(500):
        moments.update(batch)
    config = train.TrainConfig(epochs=5, lr=0.01)
    make = partial(models.LinearClassifier, (3, 32, 32))
    detector, _ = train.train_cached(make, moments.standardise(features), labels.float(), config)
    return detector, moments
