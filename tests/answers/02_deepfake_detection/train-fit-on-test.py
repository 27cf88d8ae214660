# wrong: fits the detector on the test images, not on the images it is given
# feedback: images it is given
# %% train
def train_detector(
    images: torch.Tensor, labels: torch.Tensor
) -> tuple[models.LinearClassifier, frequency.RunningMoments]:
    """A linear detector of generated images (label 1) on standardised log-spectra of
    `images`, and the moments it standardised with."""
    features = frequency.log_spectrum(test_images)
    moments = frequency.moments(features)
    config = train.TrainConfig(epochs=5, lr=1e-3, optimizer="adam")
    make = partial(models.LinearClassifier, (3, 32, 32))
    detector, _ = train.train_cached(
        make, moments.standardise(features), test_labels.float(), config
    )
    return detector, moments
