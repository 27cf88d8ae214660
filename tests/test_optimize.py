"""Tests of lib.optimize: gradient ascent on the input (eq. 3) and its parts."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lib import optimize


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
