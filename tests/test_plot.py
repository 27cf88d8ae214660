"""Tests of lib.plot: the pictures say what they claim."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from lib import plot


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_weights_use_a_diverging_map_centred_at_zero() -> None:
    weights = torch.tensor([[[0.5, -2.0], [1.0, 0.0]]]).unsqueeze(0)  # [1, 1, 2, 2]
    fig = plot.show_weights(weights, titles=["w"])
    image = fig.axes[0].images[0]
    assert image.get_clim() == (-2.0, 2.0)  # symmetric: white is exactly zero
    assert image.get_cmap().name == plot.DIVERGING
    assert fig.axes[0].get_title() == "w"


def test_one_panel_per_map_and_hidden_spares() -> None:
    fig = plot.show_weights(torch.randn(3, 28, 28), columns=2)
    grid, colorbars = fig.axes[:4], fig.axes[4:]  # a 2x2 grid, then one colorbar per map
    assert [bool(ax.images) for ax in grid] == [True, True, True, False]
    assert not any(ax.axison for ax in grid) and len(colorbars) == 3


def test_images_are_grey_in_unit_range() -> None:
    fig = plot.show_images(torch.rand(5, 1, 28, 28), titles=list("abcde"), columns=4)
    shown = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in shown] == list("abcde")
    assert shown[0].images[0].get_clim() == (0, 1)


def test_curves_are_labelled_and_epochs_are_whole() -> None:
    ax = plot.plot_curves(range(1, 4), {"a": [3, 2, 1], "b": [1, 2, 3]}, "epoch", "loss")
    assert [line.get_label() for line in ax.get_lines()] == ["a", "b"]
    assert ax.get_xlabel() == "epoch"
    ticks = ax.xaxis.get_major_locator().tick_values(1, 3)
    assert np.allclose(ticks, np.round(ticks))


def test_magnitudes_use_a_sequential_map_over_their_own_range() -> None:
    maps = torch.stack([torch.zeros(4, 4), torch.arange(16.0).reshape(4, 4) - 3])
    fig = plot.show_magnitudes(maps, titles=["flat", "ramp"], columns=2)
    shown = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in shown[:2]] == ["flat", "ramp"]
    image = shown[1].images[0]
    assert image.get_cmap().name == plot.SEQUENTIAL and image.get_clim() == (-3.0, 12.0)


def test_kernels_share_one_diverging_scale_or_show_as_colour() -> None:
    kernels = torch.linspace(-2, 1, 32 * 9).reshape(32, 1, 3, 3)
    fig = plot.show_kernels(kernels)
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 32 and len(fig.axes) == 33  # one colour bar for all
    assert all(im.get_cmap().name == plot.DIVERGING and im.get_clim() == (-2, 2) for im in images)
    colour = plot.show_kernels(torch.randn(4, 3, 11, 11))
    arrays = [ax.images[0].get_array() for ax in colour.axes if ax.images]
    assert all(a.shape == (11, 11, 3) and 0 <= a.min() and a.max() <= 1 for a in arrays)
    with pytest.raises(ValueError, match="expected 1 or 3 channels"):
        plot.show_kernels(torch.zeros(2, 2, 3, 3))
