"""Frequency features of images (chapter 2): log-scaled spectra and their standardisation.

A generator that upsamples with transposed convolutions leaves a periodic pattern in its
images, which the Fourier or cosine transform concentrates in a few coefficients (a grid of
spectral peaks). Frank et al. (2020), "Leveraging frequency analysis for deep fake image
recognition" (ICML), feed log-scaled DCT coefficients, standardised per coefficient, to a
linear classifier; this module computes those features for batches ``[N, C, H, W]`` on any
device.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

KINDS = ("fft", "dct")


def dct_matrix(size: int, device: torch.device | None = None) -> torch.Tensor:
    """The orthonormal type-II DCT matrix ``D`` (chapter 2, eq. (2.2)):
    ``D[k, n] = c_k sqrt(2 / N) cos(pi (2n + 1) k / (2N))`` with ``c_0 = 1/sqrt(2)``, else 1.

    ``D`` is orthogonal (``D D^T = I``), so the transform keeps the images' energy.
    """
    n = torch.arange(size, dtype=torch.float64)
    basis = torch.cos(math.pi * (2 * n[None, :] + 1) * n[:, None] / (2 * size))
    basis *= math.sqrt(2 / size)
    basis[0] /= math.sqrt(2)
    return basis.to(device=device, dtype=torch.float32)


def dct2(images: torch.Tensor) -> torch.Tensor:
    """The orthonormal type-II 2-D DCT over rows and columns of ``[..., H, W]`` (eq. (2.2)
    applied to both axes, ``D_H X D_W^T``), as Frank et al. (2020) use; SciPy's
    ``dctn(x, type=2, norm="ortho", axes=(-2, -1))`` computes the same."""
    rows = dct_matrix(images.shape[-2], images.device).to(images.dtype)
    columns = dct_matrix(images.shape[-1], images.device).to(images.dtype)
    return rows @ images @ columns.T


def log_spectrum(images: torch.Tensor, kind: str = "fft", eps: float = 1e-12) -> torch.Tensor:
    """Log-scaled spectrum ``log(|T(I)| + eps)`` of each image and channel (chapter 2,
    eq. (2.3)).

    ``T`` is the 2-D discrete Fourier transform (eq. (2.1), ``kind="fft"``, not shifted: the
    zero frequency sits at ``[0, 0]``) or the orthonormal type-II 2-D DCT (eq. (2.2),
    ``kind="dct"``), taken over rows and columns only, never across the channel axis.
    ``images`` is ``[N, C, H, W]`` (any device); the result has the same shape. The log
    compresses the spectrum's range, which spans many orders of magnitude from low to high
    frequencies.
    """
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not a spectrum; use one of {', '.join(KINDS)}.")
    if images.dim() != 4:
        raise ValueError(
            f"images has shape {tuple(images.shape)}; expected a batch [N, C, H, W] "
            "(use images[None] for a single image)."
        )
    images = images.float()
    coefficients = torch.fft.fft2(images, dim=(-2, -1)) if kind == "fft" else dct2(images)
    return torch.log(coefficients.abs() + eps)


class RunningMoments:
    """Per-coefficient mean and standard deviation of a data set seen in batches.

    Welford's streaming update, in the batched form of Chan et al. (1979): a batch with
    ``m`` samples, mean ``mu_b`` and sum of squared deviations ``M_b`` merges into the running
    ``(n, mu, M)`` as ``delta = mu_b - mu``, ``mu += delta m / (n + m)``,
    ``M += M_b + delta^2 n m / (n + m)``. Unlike summing ``x`` and ``x^2``, this does not
    lose precision when the mean is large compared with the spread, and it needs one pass
    over data that need not fit in memory (Frank et al. standardise every DCT coefficient).
    """

    def __init__(self) -> None:
        self.count = 0
        self._mean: torch.Tensor | None = None
        self._squares: torch.Tensor | None = None

    def update(self, batch: torch.Tensor) -> RunningMoments:
        """Add the samples of ``batch`` (first axis: samples); returns ``self``."""
        batch = batch.detach().double()
        m = len(batch)
        if m == 0:
            return self
        mean = batch.mean(dim=0)
        squares = ((batch - mean) ** 2).sum(dim=0)
        if self._mean is None:
            self.count, self._mean, self._squares = m, mean, squares
            return self
        if mean.shape != self._mean.shape:
            raise ValueError(
                f"batch samples have shape {tuple(mean.shape)}, but earlier batches had "
                f"{tuple(self._mean.shape)}."
            )
        total = self.count + m
        delta = mean - self._mean
        self._mean = self._mean + delta * (m / total)
        self._squares = self._squares + squares + delta**2 * (self.count * m / total)
        self.count = total
        return self

    def _check(self) -> None:
        if self._mean is None:
            raise ValueError("RunningMoments has seen no samples; call update() first.")

    @property
    def mean(self) -> torch.Tensor:
        """Mean of every coefficient over all samples seen (float32)."""
        self._check()
        return self._mean.float()

    @property
    def std(self) -> torch.Tensor:
        """Population standard deviation of every coefficient (float32)."""
        self._check()
        return (self._squares / self.count).sqrt().float()

    def standardise(self, features: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
        """``(x - mean) / (std + eps)`` per coefficient (chapter 2, eq. (2.4)): every feature on
        the same scale, so that a linear classifier's weights can be compared across
        coefficients."""
        mean, std = self.mean.to(features.device), self.std.to(features.device)
        return (features - mean) / (std + eps)


def moments(
    batches: Iterable[torch.Tensor] | torch.Tensor, batch_size: int = 1024
) -> RunningMoments:
    """:class:`RunningMoments` of a tensor (split into batches) or of an iterable of batches."""
    if isinstance(batches, torch.Tensor):
        batches = batches.split(batch_size)
    running = RunningMoments()
    for batch in batches:
        running.update(batch)
    return running


def detector_features(images: torch.Tensor, kind: str) -> torch.Tensor:
    """What chapter 2's linear detectors see: the log-spectrum of ``kind`` ("fft" or "dct"),
    or the raw ``"pixels"`` for comparison."""
    return images.float() if kind == "pixels" else log_spectrum(images, kind)
