"""Tests of lib.train: eq. 2, the training loop, and the model cache."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lib import train
from lib.models import LinearClassifier


def _separable(n: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Images whose label is whether the left half is brighter than the right half."""
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(n, 1, 4, 4, generator=generator)
    targets = (images[..., :2].mean((1, 2, 3)) > images[..., 2:].mean((1, 2, 3))).float()
    return images, targets


def test_cross_entropy_matches_torch(device: torch.device) -> None:
    logits = torch.linspace(-8, 8, 33, device=device)
    targets = (torch.arange(33, device=device) % 2).float()
    expected = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    assert torch.allclose(train.binary_cross_entropy(logits, targets, "none"), expected, atol=1e-6)
    assert torch.allclose(train.binary_cross_entropy(logits, targets), expected.mean(), atol=1e-6)


def test_cross_entropy_is_finite_and_pushes_towards_the_label(device: torch.device) -> None:
    logits = torch.tensor([-300.0, 300.0, 0.0], device=device, requires_grad=True)
    targets = torch.tensor([1.0, 0.0, 1.0], device=device)
    losses = train.binary_cross_entropy(logits, targets, reduction="none")
    assert torch.isfinite(losses).all() and losses[0].item() == pytest.approx(300.0)
    losses.sum().backward()
    # dL/do = sigma(o) - y: negative (raise o) for y=1, positive (lower o) for y=0.
    assert torch.allclose(logits.grad, torch.sigmoid(logits.detach()) - targets)


def test_cross_entropy_rejects_unknown_reduction() -> None:
    with pytest.raises(ValueError, match="reduction='sum'"):
        train.binary_cross_entropy(torch.zeros(1), torch.zeros(1), reduction="sum")


def test_fit_learns_a_separable_problem(device: torch.device) -> None:
    images, targets = _separable()
    model = LinearClassifier(input_shape=(1, 4, 4))
    loader = train.data.make_loader(images, targets, batch_size=32)
    history = train.fit(model, loader, train.TrainConfig(epochs=30, lr=0.5), device=device)
    assert len(history) == 30 and history[-1] < 0.5 * history[0]
    assert next(model.parameters()).device.type == device.type
    assert train.accuracy(model, images, targets) > 0.95


@pytest.mark.parametrize("field", ["epochs", "batch_size", "lr", "momentum"])
def test_config_rejects_out_of_range_values(field: str) -> None:
    bad = {"epochs": 0, "batch_size": 0, "lr": -0.1, "momentum": 1.0}[field]
    with pytest.raises(ValueError, match=f"TrainConfig\\({field}="):
        train.TrainConfig(**{field: bad})


def test_predict_thresholds_one_output_and_argmaxes_several() -> None:
    binary = LinearClassifier(input_shape=(1,))
    several = LinearClassifier(input_shape=(2,), outputs=2)
    with torch.no_grad():
        binary.linear.weight.fill_(1.0)
        binary.linear.bias.zero_()
        several.linear.weight.copy_(torch.eye(2))
        several.linear.bias.zero_()
    assert train.predict(binary, torch.tensor([[-1.0], [2.0]])).tolist() == [0, 1]
    assert train.predict(several, torch.tensor([[0.0, 1.0], [3.0, 1.0]])).tolist() == [1, 0]


def test_logit_margin_is_the_targets_lead_over_the_runner_up() -> None:
    model = LinearClassifier(input_shape=(3,), outputs=3)
    with torch.no_grad():
        model.linear.weight.copy_(torch.eye(3))
        model.linear.bias.zero_()
    inputs = torch.tensor([[3.0, 1.0, 0.5], [3.0, 1.0, 0.5], [0.0, 0.0, 2.0]])
    margins = train.logit_margin(model, inputs, [0, 1, 2])
    assert torch.allclose(margins, torch.tensor([2.0, -2.0, 2.0]))  # negative: not predicted
    assert train.logit_margin(model, inputs[:1], torch.tensor([2])).item() == -2.5


def test_seed_everything_repeats_initialisation() -> None:
    train.seed_everything(7)
    first = LinearClassifier().linear.weight.clone()
    train.seed_everything(7)
    assert torch.equal(first, LinearClassifier().linear.weight)


def _make() -> LinearClassifier:
    return LinearClassifier(input_shape=(1, 4, 4))


def test_cache_trains_once_then_loads(device, monkeypatch, capsys) -> None:
    images, targets = _separable()
    config = train.TrainConfig(epochs=3)
    model, history = train.train_cached(_make, images, targets, config, name="probe")
    assert "trained for 3 epochs" in capsys.readouterr().out
    assert len(list(train.cache_dir().glob("probe-*.pt"))) == 1

    def no_training(*args, **kwargs):
        raise AssertionError("a cached model was trained again")

    monkeypatch.setattr(train, "fit", no_training)
    again, again_history = train.train_cached(_make, images, targets, config, name="probe")
    assert "loaded the trained model" in capsys.readouterr().out
    assert again_history == history
    for mine, theirs in zip(model.parameters(), again.parameters(), strict=True):
        assert torch.equal(mine, theirs)


@pytest.mark.parametrize("change", ["config", "data", "loss", "loss code"])
def test_cache_key_covers_what_changes_the_model(change: str) -> None:
    images, targets = _separable()
    config, loss = train.TrainConfig(epochs=1), train.binary_cross_entropy
    train.train_cached(_make, images, targets, config, loss, name="probe")
    if change == "config":
        config = train.TrainConfig(epochs=1, lr=0.01)
    elif change == "data":
        targets = 1 - targets
    elif change == "loss":

        def loss(logits, targets):
            return train.binary_cross_entropy(logits, targets) * 2

    else:  # same module and name, other code: a student's edited loss in a notebook
        namespace: dict = {}
        exec("def binary_cross_entropy(o, y):\n    return (o - y).abs().mean()", namespace)
        loss = namespace["binary_cross_entropy"]
        loss.__module__, loss.__qualname__ = train.__name__, "binary_cross_entropy"

    train.train_cached(_make, images, targets, config, loss, name="probe")
    assert len(list(train.cache_dir().glob("probe-*.pt"))) == 2


def test_adam_is_chosen_by_the_config() -> None:
    model = LinearClassifier(input_shape=(2,))
    adam = train.make_optimizer(model.parameters(), train.TrainConfig(optimizer="adam", lr=0.01))
    assert isinstance(adam, torch.optim.Adam) and adam.defaults["betas"] == (0.9, 0.999)
    with pytest.raises(ValueError, match="optimizer='rmsprop'"):
        train.TrainConfig(optimizer="rmsprop")


def _two_player_step(model, config):
    """A toy two-player step: each 'player' is one half of a linear layer, with its own
    optimiser, and the step reports one loss per player."""
    first = torch.optim.SGD([model.linear.weight], lr=config.lr)
    second = torch.optim.SGD([model.linear.bias], lr=config.lr)

    def step(inputs, targets):
        losses = []
        for optimizer in (first, second):
            loss = train.binary_cross_entropy(model(inputs), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.detach())
        return torch.stack(losses)

    return step


def test_fit_runs_a_step_of_its_own_and_reports_each_players_loss(device) -> None:
    images, targets = _separable()
    model = LinearClassifier(input_shape=(1, 4, 4))
    loader = train.data.make_loader(images, targets, batch_size=32)
    config = train.TrainConfig(epochs=20, lr=0.5)
    history = train.fit(model, loader, config, device=device, step=_two_player_step)
    assert len(history) == 20 and all(len(losses) == 2 for losses in history)
    assert history[-1][0] < 0.6 * history[0][0] and history[-1][1] < 0.6 * history[0][1]
    assert train.accuracy(model, images, targets) > 0.9


class _Probe(torch.nn.Module):
    """A model class of the test's own: its code is part of its cache key."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(16, 1)

    def forward(self, x):
        return self.linear(x.flatten(1)).squeeze(-1)


def test_cache_key_is_the_code_that_builds_and_trains_the_model(monkeypatch) -> None:
    images, targets = _separable()
    config, step = train.TrainConfig(epochs=1), train.supervised_step()
    digest = train.fingerprint(images, targets)
    key = train._cache_key(_Probe(), config, step, digest)
    # Code that neither builds nor trains this model leaves its key alone ...
    monkeypatch.setattr(LinearClassifier, "weight_images", lambda self: None)
    assert train._cache_key(_Probe(), config, step, digest) == key
    # ... while its own class, its step or the loop change it.
    assert train._cache_key(_Probe(), config, _two_player_step, digest) != key
    monkeypatch.setattr(train, "_code_digest", lambda code: str(id(code)))
    assert train._cache_key(_Probe(), config, step, digest) != key


def test_course_models_live_in_the_course_cache(tmp_path, monkeypatch, capsys) -> None:
    images, targets = _separable()
    course = tmp_path / "course"
    monkeypatch.setenv(train.COURSE_CACHE_DIR_ENV, str(course))
    train.train_cached(_make, images, targets, train.TrainConfig(epochs=1), course=True)
    assert len(list(course.glob("model-*.pt"))) == 1
    assert not list(train.cache_dir().glob("*.pt"))
    capsys.readouterr()

    def read_only(*args, **kwargs):  # what a hand-in meets: the grader's copy is read-only
        raise PermissionError(13, "Permission denied", str(course))

    monkeypatch.setattr(train.torch, "save", read_only)
    train.train_cached(_make, images, targets, train.TrainConfig(epochs=2), course=True)
    assert "not cached" in capsys.readouterr().out
    train.train_cached(_make, images, targets, train.TrainConfig(epochs=1), course=True)
    assert "loaded the trained model" in capsys.readouterr().out
    assert len(list(course.glob("model-*.pt"))) == 1


def test_a_stored_fingerprint_finds_a_course_model_without_its_data(tmp_path, monkeypatch):
    """The stored index of a course model's data: built once, its fingerprint kept under the
    data's recipe, and the model then loaded by that fingerprint alone."""
    monkeypatch.setenv(train.COURSE_CACHE_DIR_ENV, str(tmp_path))
    images, targets = _separable()
    built = []

    def build() -> tuple[torch.Tensor, torch.Tensor]:
        built.append(1)
        return images, targets

    config = train.TrainConfig(epochs=1)
    digest = train.stored_fingerprint("separable", "recipe-1", build)
    assert digest == train.fingerprint(images, targets) and len(built) == 1
    assert train.stored_fingerprint("separable", "recipe-1", build) == digest and len(built) == 1
    assert train.load_cached(_make, digest, config, name="probe", course=True) is None
    model, _ = train.train_cached(_make, images, targets, config, name="probe", course=True)
    loaded = train.load_cached(_make, digest, config, name="probe", course=True)
    assert loaded is not None and torch.equal(loaded(images), model(images))
    other = train.fingerprint(images, 1 - targets)
    assert train.load_cached(_make, other, config, name="probe", course=True) is None
    train.stored_fingerprint("separable", "recipe-2", build)
    assert len(built) == 2, "another recipe is another entry"


def test_course_models_are_registered_and_trained_by_the_command(monkeypatch, capsys) -> None:
    from lib.__main__ import main

    calls = []
    real = train.course_models()  # imports all of lib, so nothing registers after the patch
    assert real, "the course's own models (generator, MNIST CNN) are registered"
    monkeypatch.setattr(train, "_COURSE_MODELS", {})  # the command trains only the probe

    @train.course_model
    def probe_course_model():
        calls.append(1)
        return _make()

    name = f"{__name__}.test_course_models_are_registered_and_trained_by_the_command"
    assert [key.split(".<locals>")[0] for key in train.course_models()] == [name]
    assert main(["course-models", "--list"]) == 0 and not calls
    assert main(["course-models"]) == 0 and calls == [1]
    assert "probe_course_model: ready in" in capsys.readouterr().out
