"""Tests of lib.attribution: a saliency map is the magnitude of the score's gradient, exactly;
integrated gradients are an exact quadrature with complete attributions."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lib import attribution
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


# --- Integrated gradients (chapter 5, eq. 5) ----------------------------------------------------


def _small_cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(4 * 5 * 5, 16),
        nn.Tanh(),
        nn.Linear(16, 3),
    ).eval()


def _images(count: int = 5, seed: int = 1) -> torch.Tensor:
    return torch.rand(count, 1, 12, 12, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("method", attribution.METHODS)
@pytest.mark.parametrize("steps", [2, 3, 7, 50, 128])
def test_ig_weights_sum_to_one(method: str, steps: int):
    alphas, weights = attribution.quadrature(method, steps)
    assert len(alphas) == len(weights) == steps
    assert alphas.dtype == weights.dtype == torch.float64
    assert abs(math.fsum(weights.tolist()) - 1.0) < 1e-14  # not Captum's 1 - 1/m
    assert (weights > 0).all() and (alphas >= 0).all() and (alphas <= 1).all()


def test_ig_riemann_right_is_eq_5():
    alphas, weights = attribution.quadrature("riemann_right", 4)
    assert alphas.tolist() == [0.25, 0.5, 0.75, 1.0] and weights.tolist() == [0.25] * 4


@pytest.mark.parametrize("steps", [1, 2, 5, 10])
def test_ig_gauss_legendre_integrates_polynomials_exactly(steps: int):
    alphas, weights = attribution.quadrature("gauss_legendre", steps)
    for degree in range(2 * steps):  # exact up to degree 2m - 1
        assert abs(float((weights * alphas**degree).sum()) - 1 / (degree + 1)) < 1e-13


@pytest.mark.parametrize("method", attribution.METHODS)
def test_ig_exact_on_linear_models(method: str, device: torch.device):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(2 * 6 * 6, 4)).to(device).double()
    inputs = torch.randn(7, 2, 6, 6, dtype=torch.float64, device=device)
    baseline = torch.randn(2, 6, 6, dtype=torch.float64, device=device)
    targets = torch.tensor([0, 1, 2, 3, 0, 1, 2], device=device)
    ig, delta = attribution.integrated_gradients(
        model, inputs, targets, baseline, steps=3, method=method, return_delta=True
    )
    weight = model[1].weight.reshape(4, 2, 6, 6)
    assert torch.allclose(ig, (inputs - baseline) * weight[targets], atol=1e-12)
    assert delta.shape == (7,) and delta.abs().max() < 1e-10


def test_ig_matches_eq_5_computed_one_step_at_a_time():
    model, images, targets = _small_cnn(), _images(3), torch.tensor([0, 2, 1])
    m, expected = 6, torch.zeros_like(images)
    for k in range(1, m + 1):
        point = ((k / m) * images).requires_grad_(True)
        model(point).gather(1, targets[:, None]).sum().backward()
        expected += point.grad / m
    expected *= images
    ig = attribution.integrated_gradients(model, images, targets, steps=m)
    assert torch.allclose(ig, expected, atol=1e-6)


@pytest.mark.parametrize("method", attribution.METHODS)
def test_ig_batch_size_does_not_change_the_result(method: str):
    model, images = _small_cnn(), _images(3)
    targets = torch.tensor([0, 1, 2])
    results = [
        attribution.integrated_gradients(
            model, images, targets, steps=9, method=method, batch_size=size
        )
        for size in (None, 1, 7, 1000)
    ]
    for other in results[1:]:
        assert torch.allclose(results[0], other, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("method", attribution.METHODS)
def test_ig_auto_steps_meet_the_tolerance(method: str):
    model, images = _small_cnn(), _images(4)
    targets = torch.tensor([0, 1, 2, 0])
    ig, delta, m = attribution.integrated_gradients(
        model, images, targets, steps="auto", method=method, tolerance=1e-2, return_delta=True
    )
    with torch.no_grad():
        outputs = model(images) - model(torch.zeros_like(images))
    change = outputs[range(4), targets]
    assert torch.allclose(delta, ig.flatten(1).sum(1) - change, atol=1e-5)
    assert (delta.abs() <= 1e-2 * change.abs()).all(), (delta, change)
    # Each example stops at its own m; reusing the points of smaller m gives what a fresh
    # run at that m gives.
    assert m.shape == (4,) and (m >= 8).all()
    for row, steps in enumerate(m.tolist()):
        fresh = attribution.integrated_gradients(
            model, images[row : row + 1], targets[row], steps=steps, method=method
        )
        assert torch.allclose(ig[row], fresh[0], rtol=1e-4, atol=1e-6)


def test_ig_auto_warns_when_max_steps_is_too_small():
    model, images = _small_cnn(), _images(2)
    with pytest.warns(UserWarning, match="max_steps"):
        _, m = attribution.integrated_gradients(
            model, images, 0, steps="auto", tolerance=1e-9, max_steps=32
        )
    assert m.tolist() == [32, 32]


def test_ig_without_the_factor_one_over_m_breaks_completeness():
    model, images, m = _small_cnn(), _images(3), 20
    ig, delta = attribution.integrated_gradients(model, images, 1, steps=m, return_delta=True)
    change = ig.flatten(1).sum(1) - delta
    assert torch.allclose((m * ig).flatten(1).sum(1) / change, torch.full((3,), float(m)), rtol=0.1)


def test_ig_never_moves_the_model(device: torch.device):
    model = _small_cnn().to(device)
    images = _images(2)  # on the CPU
    ig = attribution.integrated_gradients(model, images, [0, 1], steps=4)
    assert ig.device == images.device and ig.shape == images.shape
    assert next(model.parameters()).device.type == device.type


def test_ig_accepts_one_target_for_all_and_single_output_models():
    model, images = _small_cnn(), _images(3)
    assert torch.equal(
        attribution.integrated_gradients(model, images, 2, steps=5),
        attribution.integrated_gradients(model, images, [2, 2, 2], steps=5),
    )
    single = nn.Sequential(model, nn.Linear(3, 1)).eval()
    assert attribution.integrated_gradients(single, images, None, steps=5).shape == images.shape


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"method": "riemann_trapezoid"}, "not a quadrature rule"),
        ({"steps": 0}, "steps=0"),
        ({"baseline": torch.zeros(2, 12, 12)}, "baseline of shape"),
        ({"targets": [0, 1]}, "targets has 2 entries"),
        ({"targets": None}, "pass targets="),
        ({"batch_size": 0}, "batch_size=0"),
    ],
)
def test_ig_rejects_bad_arguments_by_name(arguments: dict, message: str):
    call = {"targets": 0} | arguments
    with pytest.raises(ValueError, match=message):
        attribution.integrated_gradients(_small_cnn(), _images(3), **call)


def test_ig_auto_batch_size_shrinks_for_larger_inputs():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
    small = attribution.auto_batch_size(model, torch.zeros(1, 3, 28, 28))
    large = attribution.auto_batch_size(model, torch.zeros(1, 3, 224, 224))
    assert 1 <= large < small <= 256
