"""Tests of lib.frequency: the spectra against NumPy/SciPy references, and Welford's moments."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft
import torch

from lib import frequency


def _images(shape=(4, 3, 8, 12), seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def test_fft_log_spectrum_matches_numpy(device: torch.device) -> None:
    images = _images()
    spectrum = frequency.log_spectrum(images.to(device), "fft")
    expected = np.log(np.abs(np.fft.fft2(images.numpy(), axes=(-2, -1))) + 1e-12)
    assert spectrum.device.type == device.type and spectrum.shape == images.shape
    assert np.allclose(spectrum.cpu().numpy(), expected, atol=1e-4)


def test_dct_is_scipys_orthonormal_type_two(device: torch.device) -> None:
    images = _images()
    coefficients = frequency.dct2(images.to(device)).cpu().numpy()
    expected = scipy.fft.dctn(images.numpy(), type=2, norm="ortho", axes=(-2, -1))
    assert np.allclose(coefficients, expected, atol=1e-5)
    spectrum = frequency.log_spectrum(images.to(device), "dct", eps=1e-6).cpu().numpy()
    # Compared as |DCT| + eps: near-zero coefficients make the log itself sensitive.
    assert np.allclose(np.exp(spectrum), np.abs(expected) + 1e-6, atol=1e-5)
    matrix = frequency.dct_matrix(7)
    assert torch.allclose(matrix @ matrix.T, torch.eye(7), atol=1e-6)  # orthonormal


@pytest.mark.parametrize("kind", frequency.KINDS)
def test_channels_are_transformed_on_their_own(kind: str) -> None:
    images = _images()
    changed = images.clone()
    changed[:, 1] = torch.rand(4, 8, 12)  # another second channel ...
    before = frequency.log_spectrum(images, kind)
    after = frequency.log_spectrum(changed, kind)
    assert torch.equal(before[:, [0, 2]], after[:, [0, 2]])  # ... leaves the others alone
    alone = torch.cat([frequency.log_spectrum(images[:, [c]], kind) for c in range(3)], dim=1)
    assert torch.allclose(before, alone)


def test_fft_magnitude_ignores_circular_shifts() -> None:
    images = _images()
    shifted = images.roll((3, 5), dims=(-2, -1))
    fft = frequency.log_spectrum(images, "fft")
    assert torch.allclose(fft, frequency.log_spectrum(shifted, "fft"), atol=1e-4)
    dct = frequency.log_spectrum(images, "dct")
    assert not torch.allclose(dct, frequency.log_spectrum(shifted, "dct"), atol=1e-2)


def test_a_checkerboard_is_one_peak_at_the_highest_frequency() -> None:
    """The pattern a stride-2 upsampling leaves: energy at (H/2, W/2) and nowhere else."""
    checker = (torch.arange(8)[:, None] + torch.arange(8)[None, :]) % 2
    spectrum = frequency.log_spectrum(checker.float()[None, None] - 0.5, "fft")[0, 0]
    peak = divmod(int(spectrum.argmax()), 8)
    assert peak == (4, 4) and (spectrum > -10).sum() == 1


@pytest.mark.parametrize("period", [2, 4, 8])
def test_a_pattern_with_period_p_lies_on_the_grid_of_multiples_of_size_over_p(period) -> None:
    """Chapter 2's reading of the peaks: a pattern repeating every p pixels of a 32x32 image has
    energy only at frequencies that are multiples of 32 / p, in both directions."""
    tile = torch.rand(period, period, generator=torch.Generator().manual_seed(period))
    image = tile.repeat(32 // period, 32 // period)[None, None]
    spectrum = frequency.log_spectrum(image, "fft")[0, 0]
    k = torch.arange(32)
    grid = (k[:, None] % (32 // period) == 0) & (k[None, :] % (32 // period) == 0)
    assert (spectrum[~grid] < -8).all() and (spectrum[grid] > -8).all()


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="kind='wavelet'"):
        frequency.log_spectrum(_images(), "wavelet")
    with pytest.raises(ValueError, match=r"shape \(3, 8, 12\).*\[N, C, H, W\]"):
        frequency.log_spectrum(_images()[0])


def test_running_moments_match_the_whole_data_set(device: torch.device) -> None:
    data = 1e4 + _images((103, 3, 4, 4)).to(device)  # a large mean: naive sums lose precision
    running = frequency.RunningMoments()
    for batch in data.split(17):  # uneven last batch
        running.update(batch)
    assert running.count == 103
    assert torch.allclose(running.mean.cpu(), data.double().mean(0).float().cpu())
    expected_std = data.double().std(0, unbiased=False).float().cpu()
    assert torch.allclose(running.std.cpu(), expected_std, rtol=1e-4)
    standard = running.standardise(data)
    assert standard.device.type == device.type
    assert torch.allclose(standard.mean(0).cpu(), torch.zeros(3, 4, 4), atol=5e-3)
    assert torch.allclose(standard.std(0, unbiased=False).cpu(), torch.ones(3, 4, 4), atol=5e-3)
    whole = frequency.moments(data, batch_size=50)
    assert torch.allclose(whole.std, running.std, rtol=1e-6)


def test_running_moments_refuse_what_they_cannot_answer() -> None:
    with pytest.raises(ValueError, match="seen no samples"):
        frequency.RunningMoments().standardise(torch.zeros(3))
    running = frequency.RunningMoments().update(torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"shape \(4,\).*\(3,\)"):
        running.update(torch.zeros(2, 4))


def test_detector_features_are_spectra_or_pixels() -> None:
    images = _images()
    assert torch.equal(frequency.detector_features(images, "pixels"), images)
    dct = frequency.detector_features(images, "dct")
    assert torch.equal(dct, frequency.log_spectrum(images, "dct"))
