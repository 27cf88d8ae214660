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


#: Sequential colormap for magnitudes, such as a saliency map's ``|dS/dI|``: dark at zero.
SEQUENTIAL = "inferno"

Picture = torch.Tensor | np.ndarray


def _channels_last(picture: Picture, name: str) -> np.ndarray:
    """One picture in any layout, ``(H, W)``, ``(1 | 3, H, W)`` or ``(H, W, 1 | 3)``, as
    ``(H, W)`` or ``(H, W, 3)``: matplotlib draws neither channels-first nor ``(H, W, 1)``.
    Where both ends could be channels (a 3x3 picture), channels-first wins, as in torch."""
    if isinstance(picture, torch.Tensor):
        picture = picture.detach().cpu().float().numpy()
    array = np.asarray(picture, dtype=np.float64)
    if array.ndim == 3 and array.shape[0] in (1, 3):
        array = np.moveaxis(array, 0, -1)
    if array.ndim == 2 or (array.ndim == 3 and array.shape[-1] == 3):
        return array
    if array.ndim == 3 and array.shape[-1] == 1:
        return array[..., 0]
    raise ValueError(
        f"{name} has shape {array.shape}; give (H, W), (1, H, W), (3, H, W), (H, W, 1) or "
        "(H, W, 3) per picture, with the batch as the first axis of a tensor or as a list."
    )


def _pictures(pictures: Picture | Sequence[Picture], name: str) -> list[np.ndarray]:
    # A 2-D array is one picture; a 3-D or 4-D array is a batch along its first axis.
    if isinstance(pictures, torch.Tensor | np.ndarray) and pictures.ndim == 2:
        pictures = [pictures]
    return [_channels_last(p, f"{name}[{i}]") for i, p in enumerate(pictures)]


def show_attributions(
    maps: Picture | Sequence[Picture],
    images: Picture | Sequence[Picture] | None = None,
    titles: Sequence[str] | None = None,
    signed: bool = False,
    percentile: float = 100.0,
    alpha: float = 0.8,
    columns: int = 4,
    size: float = 2.6,
) -> Figure:
    """Attribution maps, one panel each, optionally over their images: saliency maps
    (chapter 4), integrated gradients (chapter 5).

    - ``maps``: a batch (tensor or array ``[N, ...]``, or a list), each ``(H, W)``,
      ``(1, H, W)``, ``(3, H, W)``, ``(H, W, 1)`` or ``(H, W, 3)``; a 2-D array is one map.
    - ``signed=False`` draws magnitudes, ``|map|`` with the maximum over channels (Simonyan
      et al., 2013), in :data:`SEQUENTIAL` from zero; ``signed=True`` draws the channels'
      sum (so the map still adds up to the total attribution) in :data:`DIVERGING`, centred
      at zero with symmetric limits.
    - The colour scale of each map ends at the ``percentile`` of its magnitudes (a few
      extreme pixels would otherwise leave the rest dark).
    - ``images`` (same layouts, values in ``[0, 1]``) are drawn underneath, grey or in
      colour; each pixel of the map is then as opaque as it is strong, up to ``alpha``.
    """
    shown = _pictures(maps, "maps")
    under = None if images is None else _pictures(images, "images")
    if under is not None and len(under) != len(shown):
        raise ValueError(f"images has {len(under)} pictures for {len(shown)} maps; give one each.")
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile={percentile} must be in (0, 100].")
    fig, axes = _grid(len(shown), min(columns, len(shown)), size)
    for i, (ax, attribution) in enumerate(zip(axes, shown, strict=True)):
        if attribution.ndim == 3:
            attribution = attribution.sum(-1) if signed else np.abs(attribution).max(-1)
        elif not signed:
            attribution = np.abs(attribution)
        limit = float(np.percentile(np.abs(attribution), percentile)) or 1.0
        low, cmap = (-limit, DIVERGING) if signed else (0.0, SEQUENTIAL)
        opacity = None
        if under is not None:
            picture = np.clip(under[i], 0, 1)
            ax.imshow(picture, cmap="gray" if picture.ndim == 2 else None, vmin=0, vmax=1)
            opacity = alpha * np.clip(np.abs(attribution) / limit, 0, 1)
        drawn = ax.imshow(attribution, cmap=cmap, vmin=low, vmax=limit, alpha=opacity)
        fig.colorbar(drawn, ax=ax, fraction=0.046, pad=0.04)
        if titles is not None:
            ax.set_title(titles[i], fontsize=10)
    return fig
