# wrong: standardises with the test set's moments
# feedback: moments of the images it is given
# %% train
def train_detector(
    images: torch.Tensor, labels: torch.Tensor
) -> tuple[models.LinearClassifier, frequency.RunningMoments]:
    """A linear detector of generated images (label 1) on standardised log-spectra of
    `images`, and the moments it standardised with."""
    moments = frequency.moments(frequency.log_spectrum(test_images))
    config = train.TrainConfig(epochs=5, lr=1e-3, optimizer="adam")
    make = partial(models.LinearClassifier, (3, 32, 32))
    x = moments.standardise(frequency.log_spectrum(images))
    detector, _ = train.train_cached(make, x, labels.float(), config)
    return detector, moments
