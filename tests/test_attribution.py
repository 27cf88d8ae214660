"""Tests of lib.attribution: a saliency map is the magnitude of the score's gradient, exactly;
integrated gradients are an exact quadrature with complete attributions. Both pass Captum's
own test cases and agree with Captum (a dev dependency)."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from captum.attr import IntegratedGradients, NoiseTunnel, Saliency
from torch import nn

from lib import attribution, models
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


# --- Captum's own test cases ------------------------------------------------------------------
# Ported from Captum's tests/attr/test_integrated_gradients_basic.py,
# test_integrated_gradients_classification.py and test_saliency.py: their models
# (captum/testing/helpers/basic_models.py and classification_models.py), inputs, baselines,
# targets, step counts and tolerances. Captum's tuples of input tensors become one tensor with
# the tensors as rows; an additional forward argument becomes a row whose baseline is the input
# itself, so that it stays fixed along the path and gets no attribution. Captum's NoiseTunnel
# (SmoothGrad, VarGrad) and multiply_by_inputs=False have no counterpart in lib.attribution.
# Captum's "gausslegendre" is gauss_legendre here, its "riemann_trapezoid" trapezoid (whose
# weights add up to 1, see test_ig_agrees_with_captum).

CAPTUM_STEPS = 500  # the basic cases' n_steps
CAPTUM_SEED = 1234  # Captum's BaseTest seeds every test with set_all_random_seeds(1234)


class _Function(nn.Module):
    """A model without parameters, as Captum's basic models are."""

    def __init__(self, function) -> None:
        super().__init__()
        self.function = function

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.function(x)


def _captum_basic(x: torch.Tensor) -> torch.Tensor:
    """BasicModel: ``1 - ReLU(1 - x)``."""
    return 1 - torch.relu(1 - x)


def _captum_basic_2(x: torch.Tensor) -> torch.Tensor:
    """BasicModel2, Sundararajan et al.'s first example: ``ReLU(ReLU(x1) - 1 - ReLU(x2))``."""
    return torch.relu(torch.relu(x[:, 0]) - 1 - torch.relu(x[:, 1]))


def _captum_basic_3(x: torch.Tensor) -> torch.Tensor:
    """BasicModel3, their second example: ``ReLU(ReLU(x1 - 1) - ReLU(x2))``."""
    return torch.relu(torch.relu(x[:, 0] - 1) - torch.relu(x[:, 1]))


def _captum_basic_4(column: int):
    """BasicModel4_MultiArgs: ``ReLU(ReLU(x1 - 1) - ReLU(x2) / x3)[:, column]``, rows x1, x2, x3."""

    def model(x: torch.Tensor) -> torch.Tensor:
        return torch.relu(torch.relu(x[:, 0] - 1) - torch.relu(x[:, 1]) / x[:, 2])[:, column]

    return model


def _captum_basic_5(factors: tuple[int, int], column: int):
    """BasicModel5_MultiArgs: ``ReLU(ReLU(x1 - 1) c1 - ReLU(x2) c2)[:, column]``."""
    first, second = factors

    def model(x: torch.Tensor) -> torch.Tensor:
        return torch.relu(torch.relu(x[:, 0] - 1) * first - torch.relu(x[:, 1]) * second)[:, column]

    return model


def _captum_basic_6(x: torch.Tensor) -> torch.Tensor:
    """BasicModel6_MultiTensor: ``1 - ReLU(1 - (x1 + x2))[:, 1]``."""
    return 1 - torch.relu(1 - (x[:, 0] + x[:, 1]))[:, 1]


class _CaptumMultiLayer(nn.Module):
    """BasicModel_MultiLayer: identity, ``Linear(3, 4)`` of ones with bias (-10, 1, 1, 1),
    ReLU, ``Linear(4, 2)`` of ones with bias (-1, 1). With ``rows=True`` the input holds
    ``x`` and ``add_input`` as rows, and the network sees their sum."""

    def __init__(self, rows: bool = False) -> None:
        super().__init__()
        self.rows = rows
        self.linear1, self.linear2 = nn.Linear(3, 4), nn.Linear(4, 2)
        with torch.no_grad():
            self.linear1.weight.fill_(1.0)
            self.linear1.bias.copy_(torch.tensor([-10.0, 1.0, 1.0, 1.0]))
            self.linear2.weight.fill_(1.0)
            self.linear2.bias.copy_(torch.tensor([-1.0, 1.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.sum(1) if self.rows else x
        return self.linear2(torch.relu(self.linear1(x)))


def _captum_sigmoid_model(inputs: int, hidden: int, outputs: int) -> nn.Module:
    """SigmoidModel: Linear, ReLU, Linear, sigmoid."""
    torch.manual_seed(CAPTUM_SEED)
    layers = (nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, outputs), nn.Sigmoid())
    return nn.Sequential(*layers).eval()


def _captum_softmax_model(inputs: int, hidden: int, outputs: int) -> nn.Module:
    """SoftmaxModel: Linear, ReLU, Linear, ReLU, Linear, softmax."""
    torch.manual_seed(CAPTUM_SEED)
    return nn.Sequential(
        nn.Linear(inputs, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, outputs),
        nn.Softmax(dim=1),
    ).eval()


def _outputs(model: nn.Module, x: torch.Tensor, targets) -> torch.Tensor:
    out = model(x)
    if targets is None:
        return out.reshape(len(x))
    index = torch.as_tensor(targets).reshape(-1).expand(len(x))
    return out.reshape(len(x), -1).gather(1, index[:, None]).squeeze(1)


def _captum_vanilla_case(model, inputs, baseline=None, targets=None, method="riemann_right"):
    """Captum's ``_compute_attribution_and_evaluate`` for "vanilla" IG: 500 steps; delta of
    shape [N], equal to the completeness error computed from the attributions outside
    (tolerance 0.0, max); |delta| <= 0.07 (max); attributions with and without
    ``return_delta`` within 0.05 (sum)."""
    call = {"steps": CAPTUM_STEPS, "method": method}
    ig, delta = attribution.integrated_gradients(
        model, inputs, targets, baseline, return_delta=True, **call
    )
    alone = attribution.integrated_gradients(model, inputs, targets, baseline, **call)
    reference = torch.zeros(()) if baseline is None else torch.as_tensor(baseline)
    with torch.no_grad():
        change = _outputs(model, inputs, targets) - _outputs(
            model, torch.broadcast_to(reference, inputs.shape).contiguous(), targets
        )
    external = ig.reshape(len(ig), -1).sum(1) - change
    assert ig.shape == inputs.shape and delta.shape == (len(inputs),)
    assert (delta - external).abs().max() <= 0.0, (delta, external)
    assert delta.abs().max() <= 0.07, delta
    assert (ig - alone).abs().sum() <= 0.05
    return ig


@pytest.mark.parametrize("method", attribution.METHODS)
def test_captum_multivariable(method: str):
    """test_multivariable_vanilla: Sundararajan et al.'s two examples at x = (3, 1),
    baseline 0, give IG = (1.5, -0.5) within 0.05, and the same total (implementation
    invariance)."""
    inputs, baseline = torch.tensor([[3.0, 1.0]]), torch.tensor([[0.0, 0.0]])
    totals = []
    for function in (_captum_basic_2, _captum_basic_3):
        ig = _captum_vanilla_case(_Function(function), inputs, baseline, method=method)
        assert (ig - torch.tensor([[1.5, -0.5]])).abs().max() <= 0.05, ig
        totals.append(ig.sum())
    assert totals[0] == totals[1]


@pytest.mark.parametrize("method", attribution.METHODS)
@pytest.mark.parametrize(
    ("inputs", "baseline"),
    [([1.0], torch.tensor([0.0])), ([0.0], torch.tensor([0.0])), ([-1.0], 0.00001)],
)
def test_captum_univariable(method: str, inputs: list[float], baseline):
    """test_univariable_vanilla: inputs [N] (one number each) on ``1 - ReLU(1 - x)``."""
    _captum_vanilla_case(_Function(_captum_basic), torch.tensor(inputs), baseline, method=method)


_X1 = [[1.5, 2.0, 34.3], [3.4, 1.2, 2.0]]
_X2 = [[3.0, 3.5, 23.2], [2.3, 1.2, 0.3]]


def _rows(*rows) -> torch.Tensor:
    """Captum's input tensors ``[N, 3]`` as the rows of one input ``[N, len(rows), 3]``."""
    return torch.stack([torch.as_tensor(row, dtype=torch.float32) for row in rows], dim=1)


@pytest.mark.parametrize("method", attribution.METHODS)
def test_captum_multi_argument(method: str):
    """test_multi_argument_vanilla: BasicModel4_MultiArgs and BasicModel5_MultiArgs with
    Captum's inputs, baselines and additional forward arguments."""
    # One example, baselines (0, zeros), x3 = (1, 2, 3) (a row that stays fixed).
    x3 = torch.arange(1.0, 4.0).reshape(1, 3)
    inputs = _rows(_X1[:1], _X2[:1], x3)
    baseline = _rows(torch.zeros(1, 3), torch.zeros(1, 3), x3)
    ig = _captum_vanilla_case(_Function(_captum_basic_4(0)), inputs, baseline, method=method)
    assert (ig[:, 2] == 0).all()  # the fixed argument gets nothing
    # Two examples, each with its own x3, and output column 1.
    x3 = torch.arange(1.0, 7.0).reshape(2, 3)
    inputs, baseline = _rows(_X1, _X2, x3), _rows(torch.zeros(2, 3), torch.zeros(2, 3), x3)
    _captum_vanilla_case(_Function(_captum_basic_4(1)), inputs, baseline, method=method)
    # BasicModel5_MultiArgs with the arguments ([2, 3], 1); baselines (0, 1e-5), then
    # (zeros(1, 3), 1e-5).
    model = _Function(_captum_basic_5((2, 3), 1))
    for first in (torch.zeros(2, 3), torch.zeros(1, 3).expand(2, 3)):
        baseline = _rows(first, torch.full((2, 3), 0.00001))
        _captum_vanilla_case(model, _rows(_X1, _X2), baseline, method=method)


@pytest.mark.parametrize("method", attribution.METHODS)
def test_captum_multi_tensor_input(method: str):
    """test_multi_tensor_input_vanilla: BasicModel6_MultiTensor, zero baselines."""
    inputs = _rows([[1.5, 2.0, 3.3]], [[3.0, 3.5, 2.2]])
    _captum_vanilla_case(_Function(_captum_basic_6), inputs, method=method)


_BATCH = torch.tensor([[1.5, 2.0, 1.3], [0.5, 0.1, 2.3], [1.5, 2.0, 1.3]])


@pytest.mark.parametrize("method", attribution.METHODS)
def test_captum_batched_input(method: str):
    """test_batched_input_vanilla and ``_compute_attribution_batch_helper_evaluate``: three
    examples, target 0; at 100 steps with internal batch sizes None, 10 and 20 (points per
    pass here), each example alone gives its row of the batch within 0.05 (max), and the
    summed |delta| agree within 0.005."""
    model = _CaptumMultiLayer().eval()
    _captum_vanilla_case(model, _BATCH, targets=0, method=method)
    call = {"steps": 100, "method": method, "return_delta": True}
    for size in (None, 10, 20):
        ig, delta = attribution.integrated_gradients(model, _BATCH, 0, batch_size=size, **call)
        total = 0.0
        for row in range(len(_BATCH)):
            alone, alone_delta = attribution.integrated_gradients(
                model, _BATCH[row : row + 1], 0, batch_size=size, **call
            )
            assert (ig[row] - alone[0]).abs().max() <= 0.05
            total += alone_delta.abs().sum().item()
        assert abs(delta.abs().sum().item() - total) <= 0.005


@pytest.mark.parametrize("method", attribution.METHODS)
def test_captum_batched_multi_input(method: str):
    """test_batched_multi_input_vanilla: BasicModel_MultiLayer on ``x + add_input``."""
    x = [[1.5, 2.1, 1.9], [0.5, 0.0, 0.7], [1.5, 2.1, 1.1]]
    add_input = [[0.3, 1.9, 2.4], [0.5, 0.6, 2.1], [1.2, 2.1, 0.2]]
    model = _CaptumMultiLayer(rows=True).eval()
    _captum_vanilla_case(model, _rows(x, add_input), targets=0, method=method)


def _captum_completeness(model, inputs, targets, baseline=None, method="riemann_right"):
    """Captum's ``_validate_completness`` for "vanilla" IG: 200 steps; delta equal to the
    completeness error computed outside within 1e-4 (sum); |delta| < 0.005; shapes."""
    ig, delta = attribution.integrated_gradients(
        model, inputs, targets, baseline, steps=200, method=method, return_delta=True
    )
    reference = torch.zeros_like(inputs) if baseline is None else baseline.expand_as(inputs)
    with torch.no_grad():
        change = _outputs(model, inputs, targets) - _outputs(model, reference, targets)
    assert (delta - (ig.sum(1) - change)).abs().sum() <= 1e-4
    assert (delta.abs() < 0.005).all(), delta
    assert delta.shape == (len(inputs),) and ig.shape == inputs.shape


@pytest.mark.parametrize("method", attribution.METHODS)
def test_captum_sigmoid_classification(method: str):
    """test_sigmoid_classification_vanilla: SigmoidModel(20, 5, 1), x = (0, 1, ..., 19)."""
    model = _captum_sigmoid_model(20, 5, 1)
    _captum_completeness(model, torch.arange(0.0, 20.0)[None], 0, method=method)


@pytest.mark.parametrize("method", attribution.METHODS)
def test_captum_softmax_classification(method: str):
    """test_softmax_classification_vanilla: SoftmaxModel(40, 20, 10), x = (0, ..., 39),
    target 5."""
    model = _captum_softmax_model(40, 20, 10)
    _captum_completeness(model, torch.arange(0.0, 40.0)[None], 5, method=method)


@pytest.mark.parametrize("method", attribution.METHODS)
def test_captum_softmax_classification_batch(method: str):
    """test_softmax_classification_vanilla_batch: three examples, targets (5, 5, 2),
    baseline zeros(1, 40)."""
    model = _captum_softmax_model(40, 20, 10)
    inputs = torch.arange(0.0, 120.0).reshape(3, 40)
    targets = torch.tensor([5, 5, 2])
    _captum_completeness(model, inputs, targets, torch.zeros(1, 40), method=method)


def _pixels(values) -> torch.Tensor:
    """Captum's vector inputs as one-pixel images ``[N, 1, 1, 1]``: saliency_map takes images."""
    return torch.as_tensor(values, dtype=torch.float32).reshape(-1, 1, 1, 1)


def test_captum_saliency_basic():
    """test_saliency_test_basic_vanilla: ``1 - ReLU(1 - x)`` at (1, 2, 3, 0, -1, 7) has the
    gradients (0, 0, 0, 1, 1, 0); the map is their magnitude, within 0.5 (max). Each number
    is its own one-pixel image with one score."""
    model = _Function(lambda x: _captum_basic(x).reshape(-1, 1))
    maps = saliency_map(model, _pixels([1.0, 2.0, 3.0, 0.0, -1.0, 7.0]), 0)
    expected = torch.tensor([0.0, 0.0, 0.0, 1.0, 1.0, 0.0])
    assert (maps.reshape(-1) - expected).abs().max() <= 0.5
    assert maps.shape == (6, 1, 1)


def test_captum_saliency_leaves_the_inputs_gradient_alone():
    """test_saliency_grad_unchanged: a ``.grad`` already on the input stays as it was."""
    inputs = _pixels([1.0, 2.0, 3.0, 0.0, -1.0, 7.0]).requires_grad_(True)
    inputs.grad = torch.randn_like(inputs)
    before = inputs.grad.clone()
    saliency_map(_Function(lambda x: _captum_basic(x).reshape(-1, 1)), inputs, 0)
    assert torch.equal(inputs.grad, before)


def test_captum_saliency_classification():
    """test_saliency_classification_vanilla: SoftmaxModel(5, 20, 10) at (0, 1, 2, 3, 4),
    target 5: the map is |d output_5 / dx| from autograd, within 1e-4 (sum). The five numbers
    are one image of 1 x 5 pixels."""
    network = _captum_softmax_model(5, 20, 10)
    model = nn.Sequential(nn.Flatten(), network).eval()
    vector = torch.tensor([[0.0, 1.0, 2.0, 3.0, 4.0]], requires_grad=True)
    network(vector)[:, 5].sum().backward()
    maps = saliency_map(model, vector.detach().reshape(1, 1, 1, 5), 5)
    assert (maps.reshape(1, 5) - vector.grad.abs()).abs().sum() <= 1e-4


# --- Agreement with Captum itself -----------------------------------------------------------
#: Captum's names of our rules; its riemann_trapezoid is compared on its own below.
CAPTUM_METHODS = {
    "riemann_left": "riemann_left",
    "riemann_right": "riemann_right",
    "riemann_middle": "riemann_middle",
    "gauss_legendre": "gausslegendre",
}


@pytest.mark.parametrize("method", [*CAPTUM_METHODS, "trapezoid"])
def test_ig_agrees_with_captum(method: str, device: torch.device):
    """lib and Captum's IntegratedGradients on chapter 3's CNN (seeded, untrained: agreement
    needs no training), 32 steps. Relative to the largest |IG|: mean difference <= 1e-5 and
    max <= 1e-2 (float32 ReLU and max-pool kinks may flip a single element). Captum's
    riemann_trapezoid weights add up to 1 - 1/m, so it equals (1 - 1/m) times ours."""
    torch.manual_seed(0)
    model = models.MnistCNN().to(device).eval()
    images, labels, steps = torch.rand(4, 1, 28, 28), torch.tensor([0, 3, 6, 9]), 32
    ours = attribution.integrated_gradients(model, images, labels, steps=steps, method=method)
    captum_method = CAPTUM_METHODS.get(method, "riemann_trapezoid")
    theirs = IntegratedGradients(model).attribute(
        images.to(device), target=labels.to(device), n_steps=steps, method=captum_method
    )
    if method == "trapezoid":
        ours = ours * (1 - 1 / steps)
    difference = (ours - theirs.cpu()).abs() / theirs.abs().max().cpu()
    assert difference.mean() <= 1e-5 and difference.max() <= 1e-2, difference.max()


def test_saliency_agrees_with_captum(device: torch.device):
    """Captum's Saliency (|gradient| per colour channel), reduced by the largest magnitude
    over the channels as Simonyan et al. do, is our map."""
    torch.manual_seed(3)
    model = _conv_net(3).to(device).eval()
    images, targets = torch.rand(4, 3, 16, 16), torch.tensor([0, 2, 1, 2])
    theirs = Saliency(model).attribute(images.to(device), target=targets.to(device), abs=True)
    ours = saliency_map(model, images, targets)
    assert torch.allclose(ours, theirs.amax(dim=1).cpu(), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("method", attribution.METHODS)
def test_ig_sums_its_steps_without_losing_precision(method: str):
    """500 steps on Captum's BasicModel_MultiLayer: within 1e-6 of the same sum in float64
    (Captum: 2.4e-7; adding the steps one by one in float32 lost 3.0e-5)."""
    model = _CaptumMultiLayer().eval()
    ours = attribution.integrated_gradients(model, _BATCH, 0, steps=500, method=method)
    exact = attribution.integrated_gradients(
        copy.deepcopy(model).double(), _BATCH.double(), 0, steps=500, method=method
    )
    assert ours.dtype == torch.float32
    assert (ours.double() - exact).abs().max() <= 1e-6


# --- Chapter 6: the gradient, SmoothGrad, baselines ----------------------------------------


def test_gradient_of_a_linear_model_is_its_weight_image(device: torch.device) -> None:
    model = _linear((3, 6, 5), 4, device)
    inputs, targets = torch.rand(5, 3, 6, 5), torch.tensor([3, 0, 3, 1, 2])
    grads = attribution.gradient(model, inputs, targets, batch_size=2)
    expected = model.weight_images()[targets.to(device)].cpu()
    assert grads.device == inputs.device and torch.allclose(grads, expected)
    times = attribution.gradient_times_input(model, inputs, targets)
    assert torch.allclose(times, inputs * expected)


def test_gradient_is_the_saliency_maps_signed_self() -> None:
    model, images = _conv_net(3).eval(), torch.rand(4, 3, 16, 16)
    grads = attribution.gradient(model, images, [0, 2, 1, 2])
    assert torch.allclose(grads.abs().amax(1), saliency_map(model, images, [0, 2, 1, 2]))
    assert (grads < 0).any() and (grads > 0).any()
    with pytest.raises(ValueError, match="gradient: inputs have dtype"):
        attribution.gradient(model, images.long(), 0)


def _squares(x: torch.Tensor) -> torch.Tensor:
    """``F(x) = sum_i x_i^2``, one output: its gradient is ``2 x``."""
    return x.pow(2).flatten(1).sum(1)


def test_smoothgrad_adds_noise_of_the_papers_level() -> None:
    """On F = sum x^2 the gradient at x + g is 2 (x + g): SmoothGrad's mean is 2 x plus the
    noise's mean, SmoothGrad-squared's 4 (x^2 + sigma^2), with sigma = level * (max - min)."""
    images = torch.rand(2, 1, 10, 10)
    images[:, :, 0, 0], images[:, :, 0, 1] = 0.0, torch.tensor([1.0, 2.0])[:, None]
    model, level, samples = _Function(_squares), 0.2, 4000
    mean = attribution.smoothgrad(model, images, None, samples=samples, noise_level=level)
    square = attribution.smoothgrad(
        model, images, None, samples=samples, noise_level=level, squared=True
    )
    sigma = level * torch.tensor([1.0, 2.0]).view(2, 1, 1, 1)
    assert (mean - 2 * images).abs().max() < 2 * 5 * sigma.max() / samples**0.5
    variance = (square / 4 - images**2).mean(dim=(1, 2, 3), keepdim=True)
    assert torch.allclose(variance.sqrt(), sigma, rtol=0.02), (variance.sqrt(), sigma)


def test_smoothgrad_is_its_method_without_noise_and_seeded_with_it(device: torch.device) -> None:
    model, images, targets = _small_cnn().to(device), _images(3), torch.tensor([0, 2, 1])
    quiet = attribution.smoothgrad(model, images, targets, samples=3, noise_level=0.0)
    assert torch.allclose(quiet, attribution.gradient(model, images, targets), atol=1e-7)
    runs = [
        attribution.smoothgrad(model, images, targets, samples=9, seed=seed, batch_size=size)
        for seed, size in ((1, None), (1, 4), (2, None))
    ]
    assert torch.allclose(runs[0], runs[1], atol=1e-7) and not torch.allclose(runs[0], runs[2])
    ig = attribution.smoothgrad(
        model, images, targets, attribute=attribution.integrated_gradients, samples=2, steps=4
    )
    assert ig.shape == images.shape and ig.device == images.device
    # The maps keep the attribution function's shape: a saliency map has no colour axis.
    conv, photos = _conv_net(3).to(device).eval(), torch.rand(2, 3, 16, 16)
    quiet = attribution.smoothgrad(
        conv, photos, [0, 2], attribute=saliency_map, samples=2, noise_level=0.0
    )
    assert torch.allclose(quiet, saliency_map(conv, photos, [0, 2]), atol=1e-7)


def test_smoothgrad_refuses_noise_of_another_shape() -> None:
    with pytest.raises(ValueError, match=r"noise has shape \(3, 2, 12, 12\)"):
        attribution.smoothgrad(_small_cnn(), _images(3), 0, noise=torch.zeros(3, 2, 12, 12))


@pytest.mark.parametrize(("kind", "squared"), [("signed", False), ("abs", False), ("abs", True)])
def test_smoothgrad_equals_captums_noise_tunnel_of_saliency(
    kind: str, squared: bool, device: torch.device
) -> None:
    """Peer check: Captum's NoiseTunnel(Saliency), given the same noise (drawn as Captum draws
    it, with the global generator, example by example), to float32 rounding. Saliency with
    ``abs=False`` is the gradient; with ``abs=True`` its magnitude."""
    torch.manual_seed(0)
    model = models.MnistCNN().to(device).eval()
    images, targets, samples, stdev = torch.rand(3, 1, 28, 28), torch.tensor([1, 5, 7]), 6, 0.2
    torch.manual_seed(11)
    theirs = NoiseTunnel(Saliency(model)).attribute(
        images.to(device),
        nt_type="smoothgrad_sq" if squared else "smoothgrad",
        nt_samples=samples,
        stdevs=stdev,
        target=targets.to(device),
        abs=kind == "abs",
    )
    torch.manual_seed(11)  # Captum's draw: N * samples inputs, each example's samples together
    spread = torch.tensor(stdev, device=device).repeat((3 * samples, 1, 28, 28))
    noise = torch.normal(0, spread).view(3, samples, 1, 28, 28)

    def magnitude(model, inputs, targets):
        return attribution.gradient(model, inputs, targets).abs()

    method = magnitude if kind == "abs" else attribution.gradient
    ours = attribution.smoothgrad(
        model, images, targets, attribute=method, noise=noise, squared=squared
    )
    scale = theirs.abs().max().item()
    assert torch.allclose(ours, theirs.cpu(), rtol=1e-5, atol=1e-6 * scale)


def test_smoothgrad_of_ig_equals_captums_noise_tunnel_of_ig() -> None:
    torch.manual_seed(0)
    model = models.MnistCNN().eval()
    images, targets = torch.rand(2, 1, 28, 28), torch.tensor([3, 8])
    torch.manual_seed(4)
    theirs = NoiseTunnel(IntegratedGradients(model)).attribute(
        images, nt_samples=3, stdevs=0.1, target=targets, n_steps=8, method="riemann_right"
    )
    torch.manual_seed(4)
    noise = torch.normal(0, torch.tensor(0.1).repeat((6, 1, 28, 28))).view(2, 3, 1, 28, 28)
    ours = attribution.smoothgrad(
        model, images, targets, attribute=attribution.integrated_gradients, noise=noise, steps=8
    )
    assert torch.allclose(ours, theirs, atol=1e-5 * theirs.abs().max().item())


@pytest.mark.parametrize("sigma", [1.0, 2.0, 3.5])
def test_gaussian_blur_is_scipys_gaussian_filter(sigma: float) -> None:
    from scipy import ndimage

    images = torch.rand(2, 3, 20, 24, dtype=torch.float64)
    ours = attribution.gaussian_blur(images, sigma)
    # torch's "reflect" is scipy's "mirror"; scipy's kernel reaches int(3 sigma + 0.5).
    theirs = ndimage.gaussian_filter(
        images.numpy(), (0, 0, sigma, sigma), mode="mirror", truncate=3.0
    )
    assert torch.allclose(ours, torch.from_numpy(theirs), atol=1e-12)
    flat = torch.full((1, 1, 9, 9), 0.3)
    assert torch.allclose(attribution.gaussian_blur(flat, 10.0), flat)


def test_uniform_baselines_are_seeded_and_in_range(device: torch.device) -> None:
    inputs = torch.zeros(3, 1, 5, 5, device=device)
    drawn = attribution.uniform_baselines(inputs, count=4, low=-1.0, high=2.0, seed=3)
    assert drawn.shape == (4, 3, 1, 5, 5) and drawn.device == inputs.device
    assert drawn.min() >= -1.0 and drawn.max() <= 2.0 and drawn.std() > 0.5
    again = attribution.uniform_baselines(inputs.cpu(), count=4, low=-1.0, high=2.0, seed=3)
    assert torch.equal(drawn.cpu(), again)


def test_expected_ig_is_the_mean_over_its_baselines(device: torch.device) -> None:
    model, images, targets = _small_cnn().to(device), _images(3), torch.tensor([0, 2, 1])
    baselines = attribution.uniform_baselines(images, count=3, seed=1)
    options = {"steps": 16, "method": "gauss_legendre"}
    mean, delta = attribution.expected_integrated_gradients(
        model, images, targets, baselines, return_delta=True, **options
    )
    each = [
        attribution.integrated_gradients(model, images, targets, b, return_delta=True, **options)
        for b in baselines
    ]
    assert torch.allclose(mean, torch.stack([ig for ig, _ in each]).mean(0), atol=1e-6)
    assert torch.allclose(delta, torch.stack([d for _, d in each]).mean(0), atol=1e-6)
    # [K, ...]: the same K baselines for every input.
    shared = attribution.expected_integrated_gradients(
        model, images, targets, baselines[:, 0], **options
    )
    alone = [
        attribution.integrated_gradients(model, images, targets, b, **options)
        for b in baselines[:, 0]
    ]
    assert torch.allclose(shared, torch.stack(alone).mean(0), atol=1e-6)
    with pytest.raises(ValueError, match="do not fit inputs"):
        attribution.expected_integrated_gradients(model, images, targets, torch.zeros(12, 12))


# --- Chapter 6: similarity of maps, the randomisation test, deletion and insertion -----------


def test_rank_correlation_is_scipys_spearman_with_ties(device: torch.device) -> None:
    from scipy import stats

    torch.manual_seed(0)
    a = torch.randn(5, 1, 9, 9)
    b = a + torch.randn_like(a)
    a[:, :, :4], b[:, :, :2] = 0.0, 0.0  # many ties, as black pixels give them
    b[4] = -a[4]
    ours = attribution.rank_correlation(a.to(device), b.to(device))
    theirs = [stats.spearmanr(x.flatten(), y.flatten())[0] for x, y in zip(a, b, strict=True)]
    assert ours.dtype == torch.float64 and ours.device.type == device.type
    assert torch.allclose(ours.cpu(), torch.tensor(theirs, dtype=torch.float64), atol=1e-12)
    assert ours[4] < -0.5
    assert attribution.rank_correlation(a, a * 3 + 1).sub(1).abs().max() < 1e-12


def test_ssim_is_scikit_images_structural_similarity(device: torch.device) -> None:
    from skimage.metrics import structural_similarity

    torch.manual_seed(1)
    a = torch.rand(3, 28, 28, dtype=torch.float64)
    b = (a + 0.3 * torch.rand_like(a)).clamp(0, 1)
    ours = attribution.ssim(a.to(device), b.to(device))
    theirs = [
        structural_similarity(x.numpy(), y.numpy(), data_range=1.0)
        for x, y in zip(a, b, strict=True)
    ]
    assert torch.allclose(ours.cpu(), torch.tensor(theirs, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(attribution.ssim(a, a), torch.ones(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="at least 7 pixels"):
        attribution.ssim(a[:, :5, :5], b[:, :5, :5])


def test_randomizable_layers_top_down_and_reinitialize_is_seeded(device: torch.device) -> None:
    model = models.MnistCNN().to(device)
    assert attribution.randomizable_layers(model) == ["conv1", "conv2", "fc"]
    state = torch.random.get_rng_state()
    attribution.reinitialize(model.fc, seed=7)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global generator untouched
    other = models.MnistCNN()
    attribution.reinitialize(other.fc, seed=7)
    assert model.fc.weight.device.type == device.type
    assert torch.equal(model.fc.weight.cpu(), other.fc.weight)


def test_cascading_randomization_randomises_a_copy_from_the_top(device: torch.device) -> None:
    torch.manual_seed(0)
    model = models.MnistCNN().to(device).eval()
    before = copy.deepcopy(model.state_dict())
    images, targets = torch.rand(4, 1, 28, 28), torch.tensor([0, 3, 6, 9])
    test = attribution.cascading_randomization(model, images, targets, layers=["fc", "conv2"])
    assert test.stages == ["trained", "fc", "conv2"] and test.maps.shape == (3, 4, 1, 28, 28)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.allclose(test.maps[0], attribution.gradient(model, images, targets))
    # Stage by stage, the weights are those a copy gets from reinitialize, layer by layer.
    copied = copy.deepcopy(model)
    attribution.reinitialize(copied.fc, 2)  # fc is layer 2 of randomizable_layers
    assert torch.allclose(test.maps[1], attribution.gradient(copied, images, targets))
    attribution.reinitialize(copied.conv2, 1)
    assert torch.allclose(test.maps[2], attribution.gradient(copied, images, targets))
    for measure in attribution.SIMILARITIES:
        similarity = test.similarity(measure)
        assert similarity.shape == (3, 4) and torch.allclose(similarity[0], torch.ones(4).double())
    every = attribution.cascading_randomization(model, images, targets)  # each layer alone
    assert every.stages == ["trained", "fc", "conv2", "conv1"]
    assert torch.allclose(every.maps[2], test.maps[2])  # grouping does not change the weights
    # A stage draws every layer above it that no stage before it drew.
    skipping = attribution.cascading_randomization(model, images, targets, layers=["conv2"])
    assert torch.allclose(skipping.maps[1], test.maps[2])


def test_cascading_randomization_names_a_stage_without_layers() -> None:
    model, image = models.MnistCNN(), torch.rand(1, 1, 28, 28)
    with pytest.raises(ValueError, match="'pool' holds no randomisable layer of MnistCNN"):
        attribution.cascading_randomization(model, image, 0, layers=["pool"])
    with pytest.raises(ValueError, match="'fc' lies above the stage before it"):
        attribution.cascading_randomization(model, image, 0, layers=["conv2", "fc"])
    with pytest.raises(ValueError, match="measure='pearson'"):
        attribution.Randomization(["trained"], torch.zeros(1, 1, 4)).similarity("pearson")


@pytest.mark.parametrize("absolute", [True, False])
def test_cascading_randomization_equals_quantus_mprt(absolute: bool) -> None:
    """Peer check: Quantus's MPRT (its "top_down" cascade over every layer, Spearman's rank
    correlation, without its normalisation) on the same model, inputs and explanations, the
    layers drawn as Quantus draws them (its seed + 1 before each reset_parameters), gives the
    same correlations, within 1e-6."""
    import quantus

    torch.manual_seed(0)
    model = models.MnistCNN().eval()
    images, targets = torch.rand(5, 1, 28, 28), torch.tensor([0, 3, 6, 9, 1])

    def explain(model, inputs, targets, **_):
        maps = attribution.gradient(model, torch.as_tensor(inputs), torch.as_tensor(targets))
        return attribution.per_pixel(maps)[:, None].numpy()

    metric = quantus.MPRT(
        layer_order="top_down",
        seed=42,
        abs=absolute,
        normalise=False,
        disable_warnings=True,
        display_progressbar=False,
    )
    theirs = metric(
        model=model,
        x_batch=images.numpy(),
        y_batch=targets.numpy(),
        a_batch=None,
        explain_func=explain,
        device="cpu",
    )

    def like_quantus(module: nn.Module, _seed: int) -> None:
        torch.manual_seed(42 + 1)
        module.reset_parameters()

    test = attribution.cascading_randomization(
        model, images, targets, reinitialize_layer=like_quantus
    )
    assert ["original", *test.stages[1:]] == list(theirs)
    ours = test.similarity("rank |map|" if absolute else "rank map")
    expected = torch.tensor([theirs[stage] for stage in theirs], dtype=torch.float64)
    assert torch.allclose(ours, expected, atol=1e-6), (ours, expected)


def test_perturbation_curves_move_between_image_and_substrate(device: torch.device) -> None:
    model = _linear((1, 4, 4), 3, device)
    images, targets = torch.rand(2, 1, 4, 4), torch.tensor([2, 0])
    maps = torch.arange(16.0).view(1, 4, 4).expand(2, 4, 4)  # the last pixel first
    deletion = attribution.perturbation_curve(model, images, targets, maps, steps=4)
    with torch.no_grad():
        probability = model(images.to(device)).softmax(1)[[0, 1], targets.to(device)].cpu()
        black = model(torch.zeros(2, 1, 4, 4, device=device)).softmax(1)[[0, 1], targets.to(device)]
    assert deletion.shape == (2, 5) and deletion.device == images.device
    assert torch.allclose(deletion[:, 0], probability) and torch.allclose(
        deletion[:, -1], black.cpu()
    )
    # After one step of four, the four pixels the map ranks highest (the bottom row) are black.
    quarter = images.clone()
    quarter[:, :, 3] = 0
    with torch.no_grad():
        expected = model(quarter.to(device)).softmax(1)[[0, 1], targets.to(device)].cpu()
    assert torch.allclose(deletion[:, 1], expected)
    insertion = attribution.perturbation_curve(model, images, targets, maps, "insertion", steps=4)
    assert torch.allclose(insertion[:, -1], probability)
    assert torch.allclose(attribution.area_under_curve(torch.ones(2, 5)), torch.ones(2))
    with pytest.raises(ValueError, match="mode='erase'"):
        attribution.perturbation_curve(model, images, targets, maps, mode="erase")
