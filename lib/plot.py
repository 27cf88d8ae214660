"""One plotting helper per kind of picture in the course, and :func:`difference`, which says
in words where a picture differs from the one expected (the exercises' test messages)."""

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
#: Sequential colormap for magnitudes (spectra, a saliency map's ``|dS/dI|``): dark is small,
#: bright is large; perceptually uniform and readable with colour-blindness.
SEQUENTIAL = "viridis"
#: Width of a figure that fills the book's content column, in inches: at matplotlib's 100 dpi,
#: one inch is 100 pixels of the PNG the book shows, and the column is 960 pixels wide at a
#: 1280-pixel window (_config.yml, _static/book.css).
FIGURE_WIDTH = 9.6


def _grid(
    count: int, columns: int, size: float, titles: bool = False, colorbars: bool = False
) -> tuple[Figure, np.ndarray]:
    """A grid of ``count`` panels, ``columns`` a row, that fills the content column: each
    panel ``width / columns`` wide, at most ``size`` inches; titles and colour bars get room
    of their own (constrained layout), so that no tick label is cut off."""
    columns = max(1, min(columns, count))
    rows = -(-count // columns)
    side = min(size, FIGURE_WIDTH / columns)
    # A colour bar takes about a fifth of its panel's width, and the image shrinks with it.
    height = rows * side * (0.8 if colorbars else 1.0) + rows * 0.25 * titles
    fig, axes = plt.subplots(
        rows, columns, figsize=(side * columns, height), squeeze=False, layout="constrained"
    )
    for ax in axes.flat:
        ax.set_axis_off()
    return fig, axes.flat[:count]


def _as_image(tensor: torch.Tensor) -> np.ndarray:
    array = tensor.detach().cpu().float().numpy()
    return array[0] if array.ndim == 3 and array.shape[0] == 1 else np.moveaxis(array, 0, -1)


def show_images(
    images: torch.Tensor,
    titles: Sequence[str] | None = None,
    columns: int = 8,
    size: float = FIGURE_WIDTH / 2,
) -> Figure:
    """Input images (``[N, C, H, W]`` in ``[0, 1]``) in a grid, e.g. MNIST samples.

    ``columns`` images a row fill the content column; no image is wider than ``size`` inches
    (by default half the column, so that one or two images are not blown up)."""
    fig, axes = _grid(len(images), columns, size, titles=titles is not None)
    for i, (ax, image) in enumerate(zip(axes, images, strict=True)):
        ax.imshow(_as_image(image), cmap="gray", vmin=0, vmax=1)
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    return fig


def _colorbar(fig: Figure, shown: object, ax: Axes | list[Axes]) -> None:
    """A colour bar beside ``ax`` whose tick labels are short (``%.2g``) and small enough for
    a panel of a grid."""
    bar = fig.colorbar(shown, ax=ax, shrink=0.9, format="%.2g")
    bar.ax.tick_params(labelsize=8)


def show_weights(
    weights: torch.Tensor,
    titles: Sequence[str] | None = None,
    columns: int = 4,
    size: float = FIGURE_WIDTH / 2,
) -> Figure:
    """Signed maps (``[N, 1, H, W]`` or ``[N, H, W]``), e.g. the rows of ``A`` in eq. 1.

    Each map gets a diverging colormap centred at zero with symmetric limits, so white is
    exactly zero and the colour scale says which pixels push the output up or down.
    ``columns`` maps a row fill the content column, none wider than ``size`` inches.
    """
    maps = weights.detach().cpu().float().reshape(len(weights), *weights.shape[-2:])
    fig, axes = _grid(len(maps), columns, size, titles=titles is not None, colorbars=True)
    for i, (ax, image) in enumerate(zip(axes, maps, strict=True)):
        limit = float(image.abs().max()) or 1.0
        shown = ax.imshow(image.numpy(), cmap=DIVERGING, vmin=-limit, vmax=limit)
        _colorbar(fig, shown, ax)
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
        _, ax = plt.subplots(figsize=(FIGURE_WIDTH, FIGURE_WIDTH * 0.38), layout="constrained")
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
    maps: torch.Tensor,
    titles: Sequence[str] | None = None,
    columns: int = 4,
    size: float = FIGURE_WIDTH / 2,
) -> Figure:
    """Unsigned maps (``[N, 1, H, W]`` or ``[N, H, W]``) on a sequential colormap, e.g. the mean
    log-spectra of chapter 2: brighter is larger, and each map has its own colour bar.
    ``columns`` maps a row fill the content column, none wider than ``size`` inches."""
    maps = maps.detach().cpu().float().reshape(len(maps), *maps.shape[-2:])
    fig, axes = _grid(len(maps), columns, size, titles=titles is not None, colorbars=True)
    for i, (ax, image) in enumerate(zip(axes, maps, strict=True)):
        shown = ax.imshow(image.numpy(), cmap=SEQUENTIAL)
        _colorbar(fig, shown, ax)
        if titles is not None:
            ax.set_title(titles[i], fontsize=10)
    return fig


def show_kernels(kernels: torch.Tensor, columns: int = 8, size: float = FIGURE_WIDTH / 8) -> Figure:
    """Convolution kernels ``[N, C, h, w]`` as small images, e.g. a network's first layer.

    One channel: a diverging colormap shared by all kernels (one colour bar), white at zero.
    Three channels (RGB kernels of an ImageNet network): each kernel shown as colour, scaled
    by its own largest magnitude so that grey is zero, as Krizhevsky et al. show theirs.
    ``columns`` kernels a row fill the content column, none wider than ``size`` inches.
    """
    maps = kernels.detach().cpu().float()
    if maps.shape[1] not in (1, 3):
        raise ValueError(f"kernels of shape {tuple(maps.shape)}: expected 1 or 3 channels.")
    fig, axes = _grid(len(maps), columns, size)
    limit = float(maps.abs().max()) or 1.0
    for ax, kernel in zip(axes, maps, strict=True):
        if kernel.shape[0] == 1:
            shown = ax.imshow(kernel[0].numpy(), cmap=DIVERGING, vmin=-limit, vmax=limit)
        else:
            scale = float(kernel.abs().max()) or 1.0
            ax.imshow((0.5 + 0.5 * kernel / scale).permute(1, 2, 0).numpy())
    if maps.shape[1] == 1:
        _colorbar(fig, shown, list(axes))
    return fig


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


#: The panels of an attribution picture, in order: the image itself, the map as a heat map
#: with its colour bar, and the map blended over the image.
PANELS = ("image", "map", "overlay")


def _reduce(attribution: np.ndarray, signed: bool, percentile: float) -> tuple[np.ndarray, float]:
    """One map ``(H, W)`` or ``(H, W, C)`` as ``(H, W)``: the channels' sum when ``signed`` (it
    keeps eq. 5's total), else the largest magnitude over the channels (Simonyan et al., 2013,
    section 3.1); and where its colour scale ends, the ``percentile`` of its magnitudes."""
    if attribution.ndim == 3:
        attribution = attribution.sum(-1) if signed else np.abs(attribution).max(-1)
    elif not signed:
        attribution = np.abs(attribution)
    return attribution, float(np.percentile(np.abs(attribution), percentile)) or 1.0


def _attribution_panel(
    fig: Figure,
    ax: Axes,
    panel: str,
    value: np.ndarray,
    limit: float,
    signed: bool,
    picture: np.ndarray | None,
    alpha: float,
) -> None:
    """One panel of :func:`show_attributions`. Beyond ``limit`` the colours saturate."""
    cmap, low = (DIVERGING, -limit) if signed else (SEQUENTIAL, 0.0)
    if panel == "map":
        drawn = ax.imshow(value, cmap=cmap, vmin=low, vmax=limit)
        fig.colorbar(drawn, ax=ax, shrink=0.8, format="%.2g").ax.tick_params(labelsize=8)
        return
    if panel == "overlay" and picture.ndim == 3:
        picture = picture.mean(-1)  # grey, so that the colours are the map's
    ax.imshow(picture, cmap="gray" if picture.ndim == 2 else None, vmin=0, vmax=1)
    if panel == "overlay":
        opacity = alpha * np.clip(np.abs(value) / limit, 0, 1)
        ax.imshow(value, cmap=cmap, vmin=low, vmax=limit, alpha=opacity)


def show_attributions(
    maps: Picture | Sequence[Picture],
    images: Picture | Sequence[Picture] | None = None,
    titles: Sequence[str] | None = None,
    signed: bool = False,
    percentile: float = 98.0,
    panels: Sequence[str] | None = None,
    columns: int | None = None,
    alpha: float = 0.8,
    width: float = FIGURE_WIDTH,
) -> Figure:
    """Attribution maps drawn so that a reader can read them: saliency maps (chapter 4,
    Simonyan et al., 2013) and integrated gradients (chapter 5, eq. 5, Sundararajan et al.,
    2017).

    Each example gets the ``panels`` of :data:`PANELS` it asks for, side by side: the image,
    the map as a heat map with its colour bar, and the map blended over the image (a grey copy
    of it, so that the colours are the map's), each pixel as opaque as the map is strong, up
    to ``alpha``. ``columns`` examples share a row (default: six panels a row), and the figure
    is ``width`` inches wide (default: the book's content column).

    - ``maps``: a batch (tensor or array ``[N, ...]``, or a list), each ``(H, W)``,
      ``(1, H, W)``, ``(3, H, W)``, ``(H, W, 1)`` or ``(H, W, 3)``; a 2-D array is one map.
      ``images``: the same layouts, values in ``[0, 1]``; without them only the map is drawn.
    - ``signed=False`` draws magnitudes (the largest over the channels) on :data:`SEQUENTIAL`
      from 0; ``signed=True`` the channels' sum on :data:`DIVERGING`, white at 0.
    - Outliers are clipped: the colour scale ends at the ``percentile`` of each map's
      magnitudes (98 by default, as Captum's ``visualize_image_attr``, which clips 2% of the
      attribution), so the brightest 2% of the pixels saturate and the rest stay visible.
    - ``titles`` (one per example) go above the example's first panel.
    """
    shown = _pictures(maps, "maps")
    under = None if images is None else _pictures(images, "images")
    if under is not None and len(under) != len(shown):
        raise ValueError(f"images has {len(under)} pictures for {len(shown)} maps; give one each.")
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile={percentile} must be in (0, 100].")
    panels = tuple(panels or (PANELS if under is not None else ("map",)))
    if not panels or not set(panels) <= set(PANELS):
        raise ValueError(f"panels={panels!r}: choose one or more of {PANELS}.")
    if under is None and set(panels) != {"map"}:
        raise ValueError(f"panels={panels!r} need images=; without images only 'map' is drawn.")
    columns = columns or max(1, 6 // len(panels))
    per_row = min(columns, len(shown)) * len(panels)
    rows = -(-len(shown) // columns)
    side = width / per_row
    fig, axes = plt.subplots(
        rows,
        per_row,
        figsize=(width, rows * side + 0.3 * (titles is not None)),
        squeeze=False,
        layout="constrained",
    )
    for ax in axes.flat:
        ax.set_axis_off()
    for i, attribution in enumerate(shown):
        value, limit = _reduce(attribution, signed, percentile)
        row, first = divmod(i, columns)
        for j, panel in enumerate(panels):
            ax = axes[row, first * len(panels) + j]
            picture = None if under is None else np.clip(under[i], 0, 1)
            _attribution_panel(fig, ax, panel, value, limit, signed, picture, alpha)
            if titles is not None and j == 0:
                ax.set_title(titles[i], fontsize=9)
    return fig


def show_map_grid(
    maps: torch.Tensor | np.ndarray,
    rows: Sequence[str],
    columns: Sequence[str],
    percentile: float = 99.0,
    width: float = FIGURE_WIDTH,
) -> Figure:
    """Maps ``[R, C, H, W]`` in a grid of ``R`` rows and ``C`` columns, as Adebayo et al. (2018)
    draw their sanity checks (chapter 6): a row per method, a column per network (the trained
    one, then the stages of randomisation), named by ``rows`` on the left and ``columns`` on
    top. Each map is drawn as its magnitude on :data:`SEQUENTIAL`, scaled to its own
    ``percentile`` (what saturates is its brightest 1%), so that the maps' patterns compare,
    not their sizes; no colour bars."""
    values = np.abs(_values(maps).float().numpy())
    if values.ndim != 4 or values.shape[:2] != (len(rows), len(columns)):
        raise ValueError(
            f"maps of shape {values.shape} need [R, C, H, W] with R = {len(rows)} rows and "
            f"C = {len(columns)} columns named."
        )
    side = width / len(columns)
    fig, axes = plt.subplots(
        len(rows),
        len(columns),
        figsize=(width, len(rows) * side + 0.3),
        squeeze=False,
        layout="constrained",
    )
    for (r, c), ax in np.ndenumerate(axes):
        limit = float(np.percentile(values[r, c], percentile)) or float(values[r, c].max()) or 1.0
        ax.imshow(values[r, c], cmap=SEQUENTIAL, vmin=0, vmax=limit)
        ax.set_xticks([])
        ax.set_yticks([])
        if r == 0:
            ax.set_title(columns[c], fontsize=9)
        if c == 0:
            ax.set_ylabel(rows[r], fontsize=9)
    return fig


def plot_similarities(
    similarities: Mapping[str, Mapping[str, torch.Tensor | np.ndarray | Sequence[float]]],
    stages: Sequence[str],
    bar: float | None = None,
    width: float = FIGURE_WIDTH,
) -> Figure:
    """The similarity curves of the cascading randomisation test (chapter 6, Adebayo et al.,
    2018): a panel per measure (the keys of ``similarities``), a curve per method (the keys of
    each measure's mapping; each its own marker and dash, so that curves on top of each other
    stay visible), over ``stages`` (the trained network first). ``bar``, if given, is drawn
    as a dashed grey line on the first panel: the similarity of the first measure at which
    the chapter calls a method failed."""
    fig, axes = plt.subplots(
        1, len(similarities), figsize=(width, width * 0.36), squeeze=False, layout="constrained"
    )
    looks = [("o", "-"), ("s", "--"), ("^", "-."), ("D", ":")]
    for ax, (measure, curves) in zip(axes.flat, similarities.items(), strict=True):
        for i, (method, curve) in enumerate(curves.items()):
            marker, dash = looks[i % len(looks)]
            y = _values(curve).float().numpy()
            ax.plot(range(len(stages)), y, marker=marker, linestyle=dash, label=method)
        if bar is not None and ax is axes.flat[0]:
            ax.axhline(bar, color="grey", linestyle="--", linewidth=1)
        ax.set_xticks(range(len(stages)), stages, rotation=30, ha="right", fontsize=8)
        ax.set_ylim(-0.2, 1.05)
        ax.set_title(measure, fontsize=10)
        ax.grid(alpha=0.3)
    axes.flat[0].set_ylabel("similarity to the trained network's maps")
    axes.flat[-1].legend(fontsize=8)
    return fig


def _values(values: object) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values.detach().cpu() if torch.is_tensor(values) else values))


def difference(given: object, expected: object, atol: float = 1e-8, rtol: float = 1e-5) -> str:
    """Where ``given`` differs from ``expected`` (tensors or arrays), in words, for an exercise
    test's message: that it is no tensor, its shape, or how many entries are farther than
    ``atol + rtol * |expected|`` from theirs (as ``torch.allclose`` counts, with its
    defaults; ``atol=0, rtol=0`` for equality) and the first of them. Never raises, so that a
    message never hides the failure it reports."""
    if not isinstance(given, torch.Tensor | np.ndarray):
        return f"it is a {type(given).__name__}, not a tensor"
    try:
        mine, wanted = _values(given), _values(expected)
        if mine.shape != wanted.shape:
            return f"its shape is {tuple(mine.shape)} where {tuple(wanted.shape)} is expected"
        if mine.is_complex() and not wanted.is_complex():
            return "its values are complex where real ones are expected"
        mine, wanted = mine.double(), wanted.double()
        apart = ~torch.isclose(mine, wanted, rtol=rtol, atol=atol)
    except (TypeError, ValueError, RuntimeError) as error:
        return f"it cannot be compared with the expected values ({error})"
    if not apart.any():
        return "its values are within the tolerance"
    first = tuple(apart.nonzero()[0].tolist())
    values = f"{mine[first].item():.6g} where {wanted[first].item():.6g} is expected"
    if not first:
        return f"it is {values}"
    where = ", ".join(map(str, first))
    return f"{int(apart.sum())} of {apart.numel()} entries differ, the first at [{where}]: {values}"
