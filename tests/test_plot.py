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


@pytest.mark.parametrize("layout", ["HW", "1HW", "HW1", "3HW", "HW3"])
def test_attributions_accept_every_picture_layout(layout: str) -> None:
    grey = torch.arange(20.0).reshape(5, 4) - 12  # signed values, min -12, max 7
    maps = {
        "HW": grey,
        "1HW": grey[None],
        "HW1": grey[..., None],
        "3HW": torch.stack([grey, -2 * grey, grey / 2]),
        "HW3": torch.stack([grey, -2 * grey, grey / 2], dim=-1),
    }[layout]
    fig = plot.show_attributions([maps, maps], images=[maps.clamp(0, 1)] * 2, titles=["a", "b"])
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 2 * len(plot.PANELS)  # image, heat map, overlay for each example
    assert [ax.get_title() for ax in panels] == ["a", "", "", "b", "", ""]
    image, heat, (grey_image, overlay) = panels[0].images[0], panels[1].images[0], panels[2].images
    expected = grey.abs() * (2 if layout[0] == "3" or layout[-1] == "3" else 1)
    assert np.allclose(heat.get_array(), expected.numpy())  # max |.| over channels
    assert np.allclose(overlay.get_array(), expected.numpy())
    assert heat.get_clim() == (0.0, np.percentile(expected.numpy(), 98))
    assert heat.get_cmap().name == plot.SEQUENTIAL
    assert image.get_array().shape[:2] == grey_image.get_array().shape[:2] == (5, 4)


def test_signed_attributions_sum_channels_on_a_diverging_map() -> None:
    maps = torch.tensor([[[1.0, -4.0]], [[2.0, 1.0]], [[0.0, -1.0]]])  # (3, H=1, W=2)
    fig = plot.show_attributions(maps[None], signed=True, percentile=100)
    attribution = fig.axes[0].images[0]
    assert np.allclose(attribution.get_array(), [[3.0, -4.0]])  # the sum keeps the total
    assert attribution.get_clim() == (-4.0, 4.0)
    assert attribution.get_cmap().name == plot.DIVERGING


def test_a_tensor_is_a_batch_and_a_matrix_is_one_map() -> None:
    assert len([ax for ax in plot.show_attributions(torch.rand(5, 6, 6)).axes if ax.images]) == 5
    assert len([ax for ax in plot.show_attributions(np.ones((6, 6))).axes if ax.images]) == 1


def test_overlay_is_grey_underneath_and_as_opaque_as_the_map_is_strong() -> None:
    saliency = torch.tensor([[0.0, 1.0], [2.0, 4.0]])
    photo = torch.stack([torch.ones(2, 2), torch.zeros(2, 2), torch.zeros(2, 2)])  # pure red
    fig = plot.show_attributions(
        saliency, images=photo[None], alpha=0.8, percentile=100, panels=["overlay"]
    )
    grey, overlay = fig.axes[0].images
    assert np.allclose(grey.get_array(), 1 / 3) and grey.get_cmap().name == "gray"
    assert np.allclose(overlay.get_alpha(), [[0.0, 0.2], [0.4, 0.8]])


def test_percentile_clips_the_colour_scale() -> None:
    saliency = torch.cat([torch.ones(99), torch.tensor([100.0])]).reshape(10, 10)
    fig = plot.show_attributions(saliency, percentile=90)
    assert fig.axes[0].images[0].get_clim() == (0.0, 1.0)


def test_attribution_figures_fill_the_given_width() -> None:
    fig = plot.show_attributions(torch.rand(2, 3, 8, 8), images=torch.rand(2, 3, 8, 8), columns=1)
    assert fig.get_figwidth() == plot.FIGURE_WIDTH
    narrow = plot.show_attributions(torch.rand(8, 8), width=3.0)
    assert narrow.get_figwidth() == 3.0


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"maps": torch.rand(2, 2, 5, 5)}, r"maps\[0\] has shape \(2, 5, 5\)"),
        ({"maps": torch.rand(2, 5, 5), "images": torch.rand(3, 5, 5)}, "3 pictures for 2"),
        ({"maps": torch.rand(5, 5), "percentile": 0}, "percentile=0"),
        ({"maps": torch.rand(5, 5), "panels": ["overlay"]}, "need images="),
        ({"maps": torch.rand(5, 5), "panels": ["heat"]}, "choose one or more of"),
    ],
)
def test_attributions_name_bad_arguments(kwargs: dict, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        plot.show_attributions(**kwargs)


@pytest.mark.parametrize(
    "draw",
    [
        lambda: plot.show_images(torch.rand(16, 1, 28, 28), titles=list("abcdefghijklmnop")),
        lambda: plot.show_weights(torch.randn(10, 28, 28), titles=list("abcdefghij"), columns=5),
        lambda: plot.show_weights(torch.randn(2, 28, 28)),
        lambda: plot.show_magnitudes(torch.rand(3, 16, 16)),
        lambda: plot.show_kernels(torch.randn(96, 3, 11, 11), columns=16),
        lambda: plot.plot_curves(range(5), {"a": range(5)}, "step", "loss").figure,
    ],
)
def test_grids_fill_the_content_column(draw) -> None:
    fig = draw()
    assert fig.get_figwidth() == pytest.approx(plot.FIGURE_WIDTH)
    assert fig.get_layout_engine() is not None  # room for titles and colour bars


def test_a_lone_picture_is_not_blown_up_to_the_column() -> None:
    fig = plot.show_weights(torch.randn(1, 28, 28), size=2.0)
    assert fig.get_figwidth() == pytest.approx(2.0)


def test_colour_bar_labels_stay_inside_the_figure() -> None:
    fig = plot.show_weights(-1e-3 * torch.rand(4, 28, 28), titles=list("abcd"))
    fig.canvas.draw()
    renderer, box = fig.canvas.get_renderer(), fig.bbox
    labels = [
        label
        for ax in fig.axes[4:]
        for label in ax.get_yticklabels()
        if label.get_visible() and label.get_text()
    ]
    assert any(label.get_text().startswith("-0.00") for label in labels), labels
    for label in labels:  # no "−0." cut off at the figure's right edge
        extent = label.get_window_extent(renderer)
        assert box.x0 <= extent.x0 and extent.x1 <= box.x1, label.get_text()


def test_difference_says_where_a_picture_differs() -> None:
    weights = torch.arange(6.0).reshape(2, 3)
    assert plot.difference(weights.T.reshape(2, 3), weights) == (
        "4 of 6 entries differ, the first at [0, 1]: 3 where 1 is expected"
    )
    assert (
        plot.difference(weights[None], weights) == "its shape is (1, 2, 3) where (2, 3) is expected"
    )
    assert plot.difference((weights, None), weights) == "it is a tuple, not a tensor"
    assert (
        plot.difference(torch.tensor(float("inf")), np.float64(2.0))
        == "it is inf where 2 is expected"
    )
    # As torch.allclose counts: within atol + rtol |expected| is no difference.
    close = weights + 1e-3
    assert plot.difference(close, weights, atol=1e-2).endswith("within the tolerance")
    assert plot.difference(close, weights, atol=0, rtol=0).startswith("6 of 6 entries differ")
    assert "complex" in plot.difference(weights.to(torch.complex64), weights)
