"""Tests of lib.attribution: a saliency map is the magnitude of the score's gradient, exactly."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lib.attribution import saliency_map
from lib.models import LinearClassifier


def _linear(shape: tuple[int, ...], classes: int, device: torch.device) -> LinearClassifier:
    torch.manual_seed(0)
    return LinearClassifier(input_shape=shape, outputs=classes).to(device).eval()


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 6, 5)])
def test_linear_model_saliency_is_the_absolute_weight_image(shape, device) -> None:
    # S_t(I) = a_t . I + b_t, so dS_t/dI = a_t everywhere: the map is |a_t|, max over channels.
    model = _linear(shape, 4, device)
    targets = torch.tensor([3, 0, 3, 1, 2])
    inputs = torch.rand(5, *shape, device=device)
    maps = saliency_map(model, inputs, targets)
    expected = model.weight_images()[targets.to(device)].abs().amax(dim=1)
    assert maps.shape == (5, *shape[1:])
    assert torch.equal(maps, expected)


def test_channels_are_reduced_by_the_largest_magnitude() -> None:
    model = _linear((3, 1, 2), 2, torch.device("cpu"))
    with torch.no_grad():
        # Pixel 0: the largest magnitude is negative (-5); pixel 1: positive (4).
        model.linear.weight[0] = torch.tensor([1.0, 4.0, -5.0, 0.5, 2.0, -1.0])
    maps = saliency_map(model, torch.zeros(1, 3, 1, 2), 0)
    assert maps.tolist() == [[[5.0, 4.0]]]


def _conv_net(channels: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(channels, 4, 3, stride=2),
        nn.Tanh(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(16, 3),
    )


def test_nonlinear_model_matches_finite_differences() -> None:
    torch.manual_seed(1)
    model = _conv_net(2).double().eval()
    image = torch.rand(1, 2, 7, 7, dtype=torch.float64)
    target, eps = 2, 1e-6
    maps = saliency_map(model, image, [target])
    numeric = torch.zeros_like(image)
    for index in range(image.numel()):
        step = torch.zeros(image.numel(), dtype=torch.float64)
        step[index] = eps
        step = step.view_as(image)
        difference = model(image + step)[0, target] - model(image - step)[0, target]
        numeric.view(-1)[index] = difference / (2 * eps)
    assert torch.allclose(maps, numeric.abs().amax(dim=1), atol=1e-7)


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 224, 224)])
def test_a_batch_is_each_image_on_its_own(shape, device) -> None:
    torch.manual_seed(2)
    model = _conv_net(shape[0]).to(device).eval()
    inputs, targets = torch.rand(3, *shape), [2, 0, 1]
    maps = saliency_map(model, inputs, targets)
    alone = torch.cat(
        [saliency_map(model, x[None], t) for x, t in zip(inputs, targets, strict=True)]
    )
    assert maps.shape == (3, *shape[1:]) and maps.device == inputs.device
    assert torch.allclose(maps, alone, rtol=1e-5, atol=1e-8)
    assert (maps >= 0).all() and maps.sum() > 0


def test_model_stays_where_and_as_it_was(device) -> None:
    model = _conv_net(1).to(device).eval()
    with torch.no_grad():  # a caller's no_grad must not stop the gradient
        saliency_map(model, torch.rand(2, 1, 9, 9), 1)
    parameters = list(model.parameters())
    assert all(p.device.type == device.type and p.grad is None for p in parameters)
    assert not model.training


@pytest.mark.parametrize(
    ("inputs", "targets", "problem"),
    [
        (torch.rand(1, 28, 28), 0, "N, C, H, W"),
        (torch.zeros(2, 1, 28, 28, dtype=torch.uint8), 0, "dtype"),
        (torch.rand(2, 1, 28, 28), [0, 1, 2], "3 entries for 2 inputs"),
        (torch.rand(2, 1, 28, 28), [0, 10], "classes in 0..9"),
    ],
)
def test_bad_arguments_are_named(inputs, targets, problem) -> None:
    model = _linear((1, 28, 28), 10, torch.device("cpu"))
    with pytest.raises(ValueError, match=problem.replace("[", r"\[")):
        saliency_map(model, inputs, targets)


def test_a_single_score_model_is_refused() -> None:
    model = _linear((1, 28, 28), 1, torch.device("cpu"))  # returns [N]: a binary logit
    with pytest.raises(ValueError, match="class scores"):
        saliency_map(model, torch.rand(2, 1, 28, 28), 0)
