"""Tests of lib.optimize: gradient ascent on the input (eq. 3) and its parts."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch
from torch import nn

from lib import models, optimize, train


class _Probe(nn.Module):
    """A hidden layer ``W x`` and a smooth, increasing read-out: ``logits = softplus(W x)``."""

    def __init__(self, outputs: int = 3, pixels: int = 16) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.hidden = nn.Linear(pixels, outputs, bias=False)
        with torch.no_grad():
            self.hidden.weight.copy_(torch.randn(outputs, pixels, generator=generator))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.softplus(self.hidden(x.flatten(1)))


def test_mu_sigma_normalisation_is_per_input() -> None:
    x = torch.stack([torch.arange(16.0), 5 + 3 * torch.randn(16)]).reshape(2, 1, 4, 4)
    y = optimize.mu_sigma_normalize(x)
    assert torch.allclose(y.mean((1, 2, 3)), torch.zeros(2), atol=1e-6)
    assert torch.allclose(y.std((1, 2, 3), correction=0), torch.ones(2), atol=1e-5)
    assert torch.isfinite(optimize.mu_sigma_normalize(torch.ones(1, 4))).all()


def test_ascent_step_is_the_lectures_update() -> None:
    x, gradient = torch.ones(1, 4), torch.tensor([[1.0, -1.0, 3.0, -3.0]])
    plain = optimize.ascent_step(step_size=0.5, normalize=False)(x, gradient)
    assert torch.allclose(plain, x + 0.5 * gradient)
    normalised = optimize.ascent_step(step_size=1.0)(x, gradient)
    assert torch.allclose(normalised, optimize.mu_sigma_normalize(x + gradient))
    with pytest.raises(ValueError, match="step_size=0"):
        optimize.ascent_step(step_size=0)


def test_gradient_ascent_follows_the_objective_and_records_it(device) -> None:
    target = torch.tensor([[1.0, -2.0, 0.5]], device=device)

    def objective(x):  # maximal at x = target
        return -((x - target) ** 2).sum(1)

    start = torch.zeros(1, 3, device=device)
    update = optimize.ascent_step(step_size=0.25, normalize=False)
    x, history = optimize.gradient_ascent(objective, start, steps=20, update=update)
    assert x.device.type == device.type and not x.requires_grad
    assert torch.allclose(x, target, atol=1e-4)
    assert history.shape == (21, 1) and history.device.type == "cpu"
    assert history[0, 0] == pytest.approx(-5.25) and (history.diff(dim=0) >= 0).all()


def test_penalty_shapes_the_ascent_but_not_the_history() -> None:
    def objective(x):
        return x.sum(1)

    def penalty(x):  # the L2 penalty of chapter 4: the optimum of x - x^2 is 1/2
        return (x**2).sum(1)

    update = optimize.ascent_step(step_size=0.1, normalize=False)
    x, history = optimize.gradient_ascent(objective, torch.zeros(2, 1), 100, update, penalty)
    assert torch.allclose(x, torch.full((2, 1), 0.5), atol=1e-4)
    assert torch.allclose(history[-1], x.sum(1))


def test_objective_must_give_one_value_per_input() -> None:
    update = optimize.ascent_step()
    with pytest.raises(ValueError, match="one value per input"):
        optimize.gradient_ascent(lambda x: x.sum(), torch.ones(2, 3), 1, update)


def test_select_takes_neurons_and_averages_channels() -> None:
    outputs = torch.arange(2 * 3 * 2 * 2.0).reshape(2, 3, 2, 2)
    values = optimize.select(outputs, [1, (2, 0, 1)])
    assert values.tolist() == [outputs[0, 1].mean().item(), outputs[1, 2, 0, 1].item()]
    with pytest.raises(IndexError, match="target 5"):
        optimize.select(outputs, [5, 0])
    with pytest.raises(ValueError, match="2 targets for a batch of 1"):
        optimize.select(outputs[:1], [0, 1])


def test_a_batch_of_targets_is_optimised_in_one_call(device) -> None:
    model = _Probe().to(device)
    x, history = optimize.maximize_activation(model, [0, 1, 2], (1, 4, 4), steps=10)
    assert x.shape == (3, 1, 4, 4) and x.device.type == device.type
    assert history.shape == (11, 3)
    # Each input raises its own neuron above where it started, and favours it over the others.
    assert (history[-1] > history[0]).all()
    assert model(x).argmax(1).tolist() == [0, 1, 2]
    # The lecture's normalisation holds after the last step.
    assert torch.allclose(x.mean((1, 2, 3)), torch.zeros(3, device=device), atol=1e-5)


def test_each_input_is_optimised_independently() -> None:
    model = _Probe()
    both, _ = optimize.maximize_activation(model, [0, 2], (16,), steps=5)
    alone, _ = optimize.maximize_activation(model, [2], (16,), steps=5)
    assert torch.allclose(both[1], alone[0], atol=1e-5)


def test_a_hidden_layer_is_reached_through_a_forward_hook() -> None:
    model = _Probe()
    objective = optimize.activation(model, [1], layer="hidden")
    x = torch.randn(1, 16)
    assert torch.allclose(objective(x), model.hidden(x)[:, 1])
    x, history = optimize.maximize_activation(model, [1], (16,), steps=3, layer=model.hidden)
    assert history[-1, 0] > history[0, 0]
    assert not model.hidden._forward_hooks, "the hook must be removed afterwards"
    with pytest.raises(ValueError, match="layer='conv9' is not a module"):
        optimize.activation(model, [0], layer="conv9")


def test_starts_are_ones_or_seeded_noise() -> None:
    cpu = torch.device("cpu")
    assert torch.equal(optimize.starting_images("ones", 2, (3,), cpu), torch.ones(2, 3))
    first = optimize.starting_images("random", 2, (3,), cpu, seed=1)
    assert torch.equal(first, optimize.starting_images("random", 2, (3,), cpu, seed=1))
    assert not torch.equal(first, optimize.starting_images("random", 2, (3,), cpu, seed=2))
    with pytest.raises(ValueError, match="start='zeros'"):
        optimize.starting_images("zeros", 1, (3,), cpu)


def test_works_under_no_grad_and_leaves_the_weights_alone() -> None:
    model = _Probe()
    before = model.hidden.weight.clone()
    with torch.no_grad():
        _, history = optimize.maximize_activation(
            model, [0], (16,), steps=3, start="random", normalize=False
        )
    assert history[-1, 0] > history[0, 0]
    assert torch.equal(model.hidden.weight, before) and model.hidden.weight.grad is None


# --- Class model visualisation (chapter 4, eq. 4) -------------------------------------------


def _linear_scores(shape: tuple[int, ...], classes: int, device: torch.device):
    from lib.models import LinearClassifier

    torch.manual_seed(3)
    return LinearClassifier(input_shape=shape, outputs=classes).to(device).eval()


def test_l2_penalty_is_the_squared_norm() -> None:
    x = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    assert optimize.l2_penalty(0.5)(x).tolist() == [12.5, 0.5]  # 0.5 * 25, not 0.5 * 5
    with pytest.raises(ValueError, match="l2=-1"):
        optimize.l2_penalty(-1)


def test_class_models_of_a_linear_model_follow_eq_4_exactly(device) -> None:
    # S_c(I) = a_c . I + b_c: the ascent I <- I + lr (a_c - 2 lambda I) from zero gives
    # I_k = (1 - (1 - 2 lambda lr)^k) a_c / (2 lambda); eq. 4's maximum is a_c / (2 lambda).
    model, targets, l2, lr, steps = _linear_scores((2, 3, 3), 4, device), [2, 0, 2], 0.25, 0.5, 6
    images, history = optimize.class_model_visualization(
        model, targets, (2, 3, 3), l2=l2, steps=steps, lr=lr
    )
    weights = model.weight_images()[targets]
    expected = (1 - (1 - 2 * l2 * lr) ** steps) * weights / (2 * l2)
    assert images.shape == (3, 2, 3, 3) and images.device.type == device.type
    assert torch.allclose(images, expected, atol=1e-6)
    # The history is the score S_c alone, from the zero image (the bias) on.
    bias = model.linear.bias.detach()[targets].cpu()
    assert history.shape == (steps + 1, 3) and torch.allclose(history[0], bias)
    final = (weights * images).flatten(1).sum(1).cpu() + bias
    assert torch.allclose(history[-1], final, atol=1e-5)
    assert (history.diff(dim=0) > 0).all()


def test_one_step_of_size_one_over_two_lambda_reaches_the_maximum() -> None:
    model = _linear_scores((1, 4, 4), 3, torch.device("cpu"))
    images, _ = optimize.class_model_visualization(model, [1], (1, 4, 4), l2=2.0, steps=1, lr=0.25)
    assert torch.allclose(images[0], model.weight_images()[1] / 4.0)


def test_raising_lambda_lowers_the_norm() -> None:
    model = _Probe()
    norms = [
        optimize.class_model_visualization(model, [0, 1, 2], (1, 4, 4), l2=l2, steps=200, lr=0.05)[
            0
        ]
        .flatten(1)
        .norm(dim=1)
        for l2 in (0.05, 0.5, 5.0)
    ]
    assert (norms[0] > norms[1]).all() and (norms[1] > norms[2]).all()


def test_class_models_leave_the_model_alone(device) -> None:
    model = _Probe().to(device)
    before = [p.detach().clone() for p in model.parameters()]
    with torch.no_grad():
        images, history = optimize.class_model_visualization(model, range(3), (16,), steps=5)
    assert images.shape == (3, 16) and (history[-1] > history[0]).all()
    for old, new in zip(before, model.parameters(), strict=True):
        assert new.grad is None and torch.equal(old, new.detach())


# --- Regularisers of Olah et al. (2017) and Mordvintsev et al. (2018) ----------------------


def test_transforms_that_are_off_change_nothing() -> None:
    images = torch.rand(3, 3, 16, 16)
    assert torch.allclose(optimize.random_transforms()(images), images, atol=1e-6)


def test_jitter_shifts_by_whole_pixels_of_at_most_its_size() -> None:
    images = torch.rand(8, 1, 20, 20)
    moved = optimize.random_transforms(jitter=2, seed=1)(images)
    inner = (slice(None), slice(2, -2), slice(2, -2))  # away from the mirrored borders
    shifts = []
    for image, result in zip(images, moved, strict=True):
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                if torch.allclose(image.roll((-dy, -dx), (1, 2))[inner], result[inner], atol=1e-5):
                    shifts.append((dy, dx))
    assert len(shifts) == len(images), shifts  # each image is one shift of itself
    assert len(set(shifts)) > 1  # each image draws its own
    again = optimize.random_transforms(jitter=2, seed=1)(images)
    assert torch.equal(moved, again)  # seeded
    assert not torch.equal(moved, optimize.random_transforms(jitter=2, seed=1)(images)[[1, 0]])


def test_scale_zooms_about_the_centre() -> None:
    ramp = torch.arange(32.0).expand(1, 1, 32, 32)  # brightness = column
    zoomed = optimize.random_transforms(scale=(2.0, 2.0))(ramp)
    slope = zoomed[0, 0, 16, 9:23].diff()
    assert torch.allclose(slope, torch.full_like(slope, 0.5), atol=1e-4)  # twice as large
    assert zoomed[0, 0, 16, 15:17].mean() == pytest.approx(15.5, abs=1e-3)  # centre stays


def test_rotation_turns_each_image_by_at_most_its_degrees() -> None:
    bar = torch.zeros(16, 1, 33, 33)
    bar[:, :, 15:18, 4:29] = 1.0  # a horizontal bar through the centre
    turned = optimize.random_transforms(degrees=30, seed=2)(bar)
    rows, columns = torch.meshgrid(torch.arange(33.0), torch.arange(33.0), indexing="ij")
    angles = []
    for image in turned[:, 0]:  # the bar's direction from the image's second moments
        w = image / image.sum()
        y, x = rows - (w * rows).sum(), columns - (w * columns).sum()
        cxx, cyy, cxy = (w * x * x).sum(), (w * y * y).sum(), (w * x * y).sum()
        angles.append(float(torch.rad2deg(0.5 * torch.atan2(2 * cxy, cxx - cyy))))
    assert max(abs(a) for a in angles) <= 30.5 and max(angles) - min(angles) > 20, angles


def test_transforms_pass_the_gradient_and_name_bad_ranges() -> None:
    images = torch.rand(2, 3, 12, 12, requires_grad=True)
    optimize.random_transforms(jitter=3, scale=(0.8, 1.2), degrees=10)(images).sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="scale=\\(1.2, 0.8\\)"):
        optimize.random_transforms(scale=(1.2, 0.8))


def test_fourier_image_scales_each_frequency_by_one_over_f() -> None:
    fourier = optimize.FourierImage((1, 32, 32), decay=1.0)
    spectra = torch.zeros(2, 1, 32, 17, 2)
    spectra[0, 0, 0, 2, 0] = 1.0  # 2 periods across the image
    spectra[1, 0, 0, 8, 0] = 1.0  # 8 periods: four times the frequency
    logits = torch.logit(fourier(spectra))
    amplitudes = logits.amax((1, 2, 3)) - logits.amin((1, 2, 3))
    assert amplitudes[0] / amplitudes[1] == pytest.approx(4.0, rel=1e-3)
    # Each is a cosine along the rows, constant down the columns.
    assert torch.allclose(logits[:, :, :1], logits, atol=1e-5)


def test_fourier_images_start_grey_and_stay_in_the_pixel_range() -> None:
    fourier = optimize.FourierImage((3, 20, 24))
    start = fourier.start(4, torch.device("cpu"), seed=3)
    assert start.shape == (4, 3, 20, 13, 2)
    images = fourier(start)
    assert images.shape == (4, 3, 20, 24) and (images - 0.5).abs().max() < 0.1
    assert ((fourier(100 * start) > 0) & (fourier(100 * start) < 1)).all()
    assert torch.equal(start, fourier.start(4, torch.device("cpu"), seed=3))


def test_colour_correlation_is_a_square_root_of_the_covariance() -> None:
    generator = torch.Generator().manual_seed(0)
    grey = torch.rand(6, 1, 8, 8, generator=generator)
    photos = torch.cat([grey, 0.8 * grey, grey + 0.1 * torch.rand(6, 1, 8, 8)], 1)
    root = optimize.colour_correlation(photos)
    covariance = torch.cov(photos.permute(1, 0, 2, 3).reshape(3, -1))
    ratio = (root @ root.T) / covariance
    assert torch.allclose(ratio, ratio[0, 0].expand(3, 3), rtol=1e-3)
    assert root.norm(dim=0).max() == pytest.approx(1.0)
    # Decorrelated colour: three independent numbers become the photos' correlated colours.
    fourier = optimize.FourierImage((3, 8, 8), colour=root)
    assert torch.equal(fourier.colour, root)
    with pytest.raises(ValueError, match="colour has shape \\(2, 2\\)"):
        optimize.FourierImage((3, 8, 8), colour=torch.eye(2))


def test_adam_steps_are_lr_at_first_and_climb() -> None:
    update = optimize.adam_step(lr=0.1)
    x = update(torch.zeros(1, 2), torch.tensor([[5.0, -0.01]]))
    assert torch.allclose(x, torch.tensor([[0.1, -0.1]]), atol=1e-4)  # Adam's first step: lr
    x, _ = optimize.gradient_ascent(
        lambda x: -((x - 1) ** 2).sum(1), torch.zeros(1, 2), 400, optimize.adam_step(0.05)
    )
    assert torch.allclose(x, torch.ones(1, 2), atol=1e-2)
    with pytest.raises(ValueError, match="lr=0"):
        optimize.adam_step(0)


def test_regularised_class_models_raise_the_score_of_moved_copies() -> None:
    model = _linear_scores((3, 8, 8), 4, torch.device("cpu"))
    plain, _ = optimize.class_model_visualization(model, [1, 3], (3, 8, 8), steps=20, lr=0.5)
    fourier = optimize.FourierImage((3, 8, 8))
    transforms = optimize.random_transforms(jitter=1, seed=0)
    images, history = optimize.class_model_visualization(
        model, [1, 3], (3, 8, 8), l2=0, steps=60, lr=0.05,
        transforms=transforms, parameterization=fourier,
    )  # fmt: skip
    assert images.shape == (2, 3, 8, 8) and ((images > 0) & (images < 1)).all()
    assert (history[-1] > history[0] + 0.5).all()
    assert model(images).argmax(1).tolist() == [1, 3]
    # Off by default: the plain call is eq. 4 alone, from the zero image (the exact test above).
    assert not torch.equal(plain, images) and plain.min() < 0


def test_robustness_counts_the_transformed_copies_still_classified_as_their_class() -> None:
    class Corner(nn.Module):  # class 0 when the top-left pixel is bright, else class 1
        def __init__(self) -> None:
            super().__init__()
            self.unused = nn.Parameter(torch.zeros(1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            corner = x[:, 0, 1, 1]
            return torch.stack([corner - 0.5, 0.5 - corner], 1)

    spot, flat = torch.zeros(1, 1, 16, 16), torch.ones(1, 1, 16, 16)
    spot[0, 0, 1, 1] = 1.0
    moves = optimize.random_transforms(jitter=4, seed=0)
    shares = optimize.robustness(Corner(), torch.cat([spot, flat]), [0, 0], moves, count=32)
    assert shares[1] == 1.0  # a flat image survives every shift
    assert 0 < shares[0] < 0.2  # the spot moves away from the pixel the model reads


# --- The chapters' optimised results, under another machine's arithmetic ------------------
# A chapter asserts the class of what an ascent found (chapter 3's favourite inputs, chapter
# 4's class models). Rounding differs between thread counts and processors, and an ascent can
# amplify it; each check below recomputes the result at one thread and with weights nudged by
# one part in a million (float32 keeps about seven digits), and requires the chapter's verdict
# with a margin. With 1fa52c1's plain eq. 4 (14 steps of 2.5) the first fails: at one thread
# the goose became a sundial.

#: What a recomputed class must keep: a lead of its logit over the runner-up of at least this.
LOGIT_LEAD = 1.0


@contextmanager
def other_arithmetic(model: nn.Module, kind: str) -> Iterator[None]:
    """``"one thread"``: torch computes on one thread (other sums' order); ``"nudged
    weights"``: every weight times ``1 + 1e-6 * noise``, a change of rounding's size."""
    threads, saved = torch.get_num_threads(), copy.deepcopy(model.state_dict())
    if kind == "one thread":
        torch.set_num_threads(1)
    else:
        generator = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for parameter in model.parameters():
                noise = torch.randn(parameter.shape, generator=generator).to(parameter)
                parameter.mul_(1 + 1e-6 * noise)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        model.load_state_dict(saved)


def _lead(model: nn.Module, images: torch.Tensor, targets: list[int]) -> float:
    lead = train.logit_margin(model, images, targets).min().item()
    print(f"margin logit lead over the runner-up: {lead:+.2f} (required: {LOGIT_LEAD})")
    return lead


ARITHMETICS = ("one thread", "nudged weights")


@pytest.mark.arithmetic
@pytest.mark.parametrize("kind", ARITHMETICS)
def test_plain_imagenet_class_models_keep_their_class(kind: str) -> None:
    net = models.load_imagenet_model()
    if net is None:
        pytest.fail("no ImageNet network: the embedded weights/ should always be there")
    classes = [net.categories.index(name) for name in optimize.CLASS_MODEL_CLASSES]
    with other_arithmetic(net.model, kind):
        plain, _ = optimize.plain_class_models(net, classes)
        assert _lead(net.on_pixels(), plain, classes) >= LOGIT_LEAD


@pytest.mark.arithmetic
@pytest.mark.parametrize("kind", ARITHMETICS)
def test_mnist_class_models_and_favourite_inputs_keep_their_class(kind: str) -> None:
    cnn, digits = models.mnist_cnn(), list(range(10))
    with other_arithmetic(cnn, kind):
        class_models, _ = optimize.class_model_visualization(
            cnn, digits, (1, 28, 28), l2=0.1, steps=100, lr=0.5
        )  # chapter 4
        assert _lead(cnn, class_models, digits) >= LOGIT_LEAD
        for start in ("ones", "random"):  # chapter 3
            favourites, _ = optimize.maximize_activation(cnn, digits, (1, 28, 28), start=start)
            assert _lead(cnn, favourites, digits) >= LOGIT_LEAD
