"""One plotting helper per kind of picture in the course."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

#: Diverging colormap for signed quantities: blue below zero, white at zero, red above.
DIVERGING = "RdBu_r"
#: Sequential colormap for magnitudes (spectra): dark is small, bright is large.
SEQUENTIAL = "viridis"


def _grid(count: int, columns: int, size: float) -> tuple[Figure, np.ndarray]:
    rows = -(-count // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(size * columns, size * rows), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    return fig, axes.flat[:count]


def _as_image(tensor: torch.Tensor) -> np.ndarray:
    array = tensor.detach().cpu().float().numpy()
    return array[0] if array.ndim == 3 and array.shape[0] == 1 else np.moveaxis(array, 0, -1)


def show_images(
    images: torch.Tensor, titles: Sequence[str] | None = None, columns: int = 8, size: float = 1.4
) -> Figure:
    """Input images (``[N, C, H, W]`` in ``[0, 1]``) in a grid, e.g. MNIST samples."""
    fig, axes = _grid(len(images), columns, size)
    for i, (ax, image) in enumerate(zip(axes, images, strict=True)):
        ax.imshow(_as_image(image), cmap="gray", vmin=0, vmax=1)
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    return fig


def show_weights(
    weights: torch.Tensor, titles: Sequence[str] | None = None, columns: int = 4, size: float = 2.6
) -> Figure:
    """Signed maps (``[N, 1, H, W]`` or ``[N, H, W]``), e.g. the rows of ``A`` in eq. 1.

    Each map gets a diverging colormap centred at zero with symmetric limits, so white is
    exactly zero and the colour scale says which pixels push the output up or down.
    """
    maps = weights.detach().cpu().float().reshape(len(weights), *weights.shape[-2:])
    fig, axes = _grid(len(maps), min(columns, len(maps)), size)
    for i, (ax, image) in enumerate(zip(axes, maps, strict=True)):
        limit = float(image.abs().max()) or 1.0
        shown = ax.imshow(image.numpy(), cmap=DIVERGING, vmin=-limit, vmax=limit)
        fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
        if titles is not None:
            ax.set_title(titles[i], fontsize=10)
    return fig


def plot_curves(
    x: torch.Tensor | np.ndarray | Sequence[float],
    curves: Mapping[str, torch.Tensor | np.ndarray | Sequence[float]],
    xlabel: str,
    ylabel: str,
    ax: Axes | None = None,
) -> Axes:
    """Named curves over a shared x axis, e.g. the two cases of eq. 2 or a loss history."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.2))
    for label, y in curves.items():
        ax.plot(np.asarray(x), np.asarray(y), label=label)
    if np.issubdtype(np.asarray(x).dtype, np.integer):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs, steps: no 2.5
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    return ax


def show_magnitudes(
    maps: torch.Tensor, titles: Sequence[str] | None = None, columns: int = 4, size: float = 2.6
) -> Figure:
    """Unsigned maps (``[N, 1, H, W]`` or ``[N, H, W]``) on a sequential colormap, e.g. the mean
    log-spectra of chapter 2: brighter is larger, and each map has its own colour bar."""
    maps = maps.detach().cpu().float().reshape(len(maps), *maps.shape[-2:])
    fig, axes = _grid(len(maps), min(columns, len(maps)), size)
    for i, (ax, image) in enumerate(zip(axes, maps, strict=True)):
        shown = ax.imshow(image.numpy(), cmap=SEQUENTIAL)
        fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
        if titles is not None:
            ax.set_title(titles[i], fontsize=10)
    return fig


def show_kernels(kernels: torch.Tensor, columns: int = 8, size: float = 0.9) -> Figure:
    """Convolution kernels ``[N, C, h, w]`` as small images, e.g. a network's first layer.

    One channel: a diverging colormap shared by all kernels (one colour bar), white at zero.
    Three channels (RGB kernels of an ImageNet network): each kernel shown as colour, scaled
    by its own largest magnitude so that grey is zero, as Krizhevsky et al. show theirs.
    """
    maps = kernels.detach().cpu().float()
    if maps.shape[1] not in (1, 3):
        raise ValueError(f"kernels of shape {tuple(maps.shape)}: expected 1 or 3 channels.")
    fig, axes = _grid(len(maps), min(columns, len(maps)), size)
    limit = float(maps.abs().max()) or 1.0
    for ax, kernel in zip(axes, maps, strict=True):
        if kernel.shape[0] == 1:
            shown = ax.imshow(kernel[0].numpy(), cmap=DIVERGING, vmin=-limit, vmax=limit)
        else:
            scale = float(kernel.abs().max()) or 1.0
            ax.imshow((0.5 + 0.5 * kernel / scale).permute(1, 2, 0).numpy())
    if maps.shape[1] == 1:
        fig.colorbar(shown, ax=list(axes), fraction=0.03, pad=0.02)
    return fig
