"""The loss of eq. 2, the course's one training loop, and its on-disk model cache.

The loop, :func:`fit`, runs *steps*: a step takes one batch, updates the parameters and returns
the batch's loss. Supervised learning (chapters 1 and 3) uses :func:`supervised_step`; the
two-player game of a GAN (chapter 2) brings its own step, with one optimiser per player, as d2l
keeps ``update_D``/``update_G`` beside its trainer. Progress, device and caching are shared.

Two caches keep anything from training twice:

- the **model cache** (``$XNN_CACHE_DIR``) holds the models a chapter or a student trains;
- the **course cache** (``$XNN_COURSE_CACHE_DIR``) holds the *course models*, the trained
  networks that chapters, exercises and the grader share (chapter 2's generator, chapter 3's
  MNIST CNN). They are registered with :func:`course_model`, and ``python -m lib course-models``
  trains every one of them once; the grader hands each hand-in a read-only copy.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import marshal
import os
import pkgutil
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from lib import data
from lib.device import get_device

#: Folder for trained models; defaults to ``.cache/models`` in the repository.
CACHE_DIR_ENV = "XNN_CACHE_DIR"
#: Folder for the course models; defaults to the model cache. The grader points it at a
#: read-only copy, so that no hand-in can replace a course model for the next one.
COURSE_CACHE_DIR_ENV = "XNN_COURSE_CACHE_DIR"

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: One optimisation step on one batch ``(inputs, targets)``, already on the device: it updates
#: the parameters and returns the batch's loss, a scalar or one per player (a GAN's D and G).
Step = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: Builds the :data:`Step` for a model and a configuration; the step owns its optimisers.
StepFactory = Callable[[nn.Module, "TrainConfig"], Step]
#: A training history: the mean loss of each epoch, a float, or a tuple with one per player.
History = list[float | tuple[float, ...]]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so that a chapter gives the same numbers every run."""
    random.seed(seed)
    # The legacy global generator is the one students' own np.random calls use.
    np.random.seed(seed)  # noqa: NPY002
    torch.manual_seed(seed)


def binary_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    """Binary cross-entropy of chapter 1, eq. 2:
    ``L(o, y) = -[y log sigma(o) + (1 - y) log(1 - sigma(o))]``.

    ``reduction="mean"`` averages over the batch (the training objective); ``"none"`` keeps
    one loss per example. Written with ``log(1 - sigma(o)) = log sigma(-o)`` so that large
    ``|o|`` stays finite.
    """
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction={reduction!r} is not supported; use 'mean' or 'none'.")
    targets = targets.to(logits.dtype)
    losses = -(targets * F.logsigmoid(logits) + (1 - targets) * F.logsigmoid(-logits))
    return losses.mean() if reduction == "mean" else losses


@dataclass(frozen=True)
class TrainConfig:
    """Everything besides the model and the data that changes a trained model."""

    epochs: int = 5  # passes over the training set
    batch_size: int = 256  # examples per gradient step
    lr: float = 0.1  # step size of the optimiser
    # Decay of the running mean of the gradients: SGD's momentum (0 gives plain gradient
    # descent), or Adam's beta_1 (DCGAN's recipe for a GAN is Adam with beta_1 = 0.5).
    momentum: float = 0.9
    seed: int = 0  # seeds initialisation and shuffling
    optimizer: str = "sgd"  # "sgd" or "adam"

    def __post_init__(self) -> None:
        checks = {
            "epochs": self.epochs >= 1,
            "batch_size": self.batch_size >= 1,
            "lr": self.lr > 0,
            "momentum": 0 <= self.momentum < 1,
            "optimizer": self.optimizer in ("sgd", "adam"),
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(
                    f"TrainConfig({name}={getattr(self, name)!r}) is out of range: epochs and "
                    "batch_size must be at least 1, lr positive, momentum in [0, 1), "
                    "optimizer 'sgd' or 'adam'."
                )


def make_optimizer(
    parameters: Iterable[nn.Parameter], config: TrainConfig
) -> torch.optim.Optimizer:
    """The optimiser ``config`` names: SGD with momentum, or Adam with ``beta_1 = momentum``."""
    if config.optimizer == "adam":
        return torch.optim.Adam(parameters, lr=config.lr, betas=(config.momentum, 0.999))
    return torch.optim.SGD(parameters, lr=config.lr, momentum=config.momentum)


def supervised_step(loss_fn: Loss = binary_cross_entropy) -> StepFactory:
    """The step of supervised learning: one optimiser step on ``loss_fn(model(x), y)``
    (eq. 2 in chapter 1, the cross-entropy over ten digits in chapter 3)."""

    def make(model: nn.Module, config: TrainConfig) -> Step:
        optimizer = make_optimizer(model.parameters(), config)

        def step(inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
            loss = loss_fn(model(inputs), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return loss.detach()

        return step

    make.loss_fn = loss_fn  # read by the cache key: the loss's code changes the model
    return make


def fit(
    model: nn.Module,
    loader: DataLoader,
    config: TrainConfig = TrainConfig(),
    loss_fn: Loss = binary_cross_entropy,
    device: torch.device | None = None,
    step: StepFactory | None = None,
) -> History:
    """Train ``model`` on ``loader``; returns the mean loss of each epoch.

    The one training loop of the course: chapter 1 trains eq. 1 under eq. 2 with it (the
    default step, :func:`supervised_step` of ``loss_fn``), chapter 2 its GAN (a two-player
    ``step`` whose losses are reported per player).
    """
    device = device or get_device()
    model.to(device).train()
    update = (step or supervised_step(loss_fn))(model, config)
    history: History = []
    # tqdm's notebook bar ignores TQDM_DISABLE, so honour it here: the book sets it to keep
    # widget outputs (and the scripts they load) out of its static pages.
    quiet = os.environ.get("TQDM_DISABLE", "") not in ("", "0")
    progress = tqdm(total=config.epochs * len(loader), desc="training", leave=False, disable=quiet)
    for _ in range(config.epochs):
        # Summed on the device and read once per epoch: a .item() per batch would make the
        # CPU wait for the GPU at every step.
        total, count = torch.zeros((), device=device), 0
        for inputs, targets in loader:
            inputs, targets = inputs.to(device), targets.to(device)
            total = total + update(inputs, targets) * len(inputs)
            count += len(inputs)
            progress.update()
        mean = (total / count).tolist()
        history.append(tuple(mean) if isinstance(mean, list) else mean)
        shown = mean if isinstance(mean, list) else [mean]
        progress.set_postfix(loss=" ".join(f"{value:.4f}" for value in shown))
    progress.close()
    return history


@torch.no_grad()
def predict(model: nn.Module, inputs: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Predicted classes: ``o > 0`` for one output (eq. 1), the arg-max for several."""
    device = next(model.parameters()).device
    model.eval()
    outputs = torch.cat([model(chunk.to(device)).cpu() for chunk in inputs.split(batch_size)])
    return (outputs > 0).long() if outputs.dim() == 1 else outputs.argmax(dim=1)


def accuracy(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Share of ``inputs`` whose predicted class equals ``targets``."""
    return (predict(model, inputs) == targets.long().cpu()).float().mean().item()


@torch.no_grad()
def logit_margin(
    model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | Sequence[int]
) -> torch.Tensor:
    """Each input's target logit minus the largest other logit (``[N]``, on the CPU).

    Positive where the model predicts the target, and by how much: the margin that rounding
    (another thread count, another processor) would have to cross to change the class. The
    chapters assert their optimised and trained images' classes with it (chapters 3 and 4)."""
    device = next(model.parameters()).device
    model.eval()
    logits = model(inputs.to(device)).cpu()
    targets = torch.as_tensor(targets).long().cpu()
    chosen = logits.gather(1, targets[:, None]).squeeze(1)
    others = logits.scatter(1, targets[:, None], -torch.inf)
    return chosen - others.amax(dim=1)


def cache_dir() -> Path:
    """Where trained models are kept: ``$XNN_CACHE_DIR`` or ``.cache/models`` in the repo."""
    configured = os.environ.get(CACHE_DIR_ENV)
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parent.parent / ".cache" / "models"


def course_cache_dir() -> Path:
    """Where the course models are kept: ``$XNN_COURSE_CACHE_DIR`` or :func:`cache_dir`."""
    configured = os.environ.get(COURSE_CACHE_DIR_ENV)
    return Path(configured) if configured else cache_dir()


def fingerprint(*tensors: torch.Tensor) -> str:
    """A digest of tensors' contents, so that other data means another cache entry."""
    digest = hashlib.sha256()
    for tensor in tensors:
        digest.update(str((tuple(tensor.shape), tensor.dtype)).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().data)  # no copy to bytes
    return digest.hexdigest()


def _code_digest(code: Callable | type) -> str:
    """A digest of a function's or a class's code, so that editing a loss or a model (even
    one defined in a notebook, under the same name) retrains."""
    try:
        text = inspect.getsource(code).encode()
    except (OSError, TypeError):  # no source file (a notebook class): use the compiled code
        functions = vars(code).values() if isinstance(code, type) else [code]
        text = (
            b"".join(marshal.dumps(f.__code__) for f in functions if hasattr(f, "__code__"))
            or repr(code).encode()
        )
    return hashlib.sha256(text).hexdigest()


def _model_code(model: nn.Module) -> list[str]:
    """The code that builds ``model``: every class of its modules that torch does not ship.

    Keyed on these alone, a change to one model's class retrains that model and no other.
    """
    classes = {type(module) for module in model.modules()}
    own = sorted(
        (c for c in classes if not c.__module__.startswith("torch.")),
        key=lambda c: (c.__module__, c.__qualname__),
    )
    return [f"{c.__module__}.{c.__qualname__}:{_code_digest(c)}" for c in own]


#: The loop's own code, part of every cache key (taken at import, so that a test replacing
#: ``fit`` to catch retraining does not change the key).
_LOOP_CODE = (fit, make_optimizer)


def _cache_key(model: nn.Module, config: TrainConfig, step: StepFactory, data_digest: str) -> str:
    # The code that builds and trains this model: its classes, its step (and loss), the loop.
    # A step factory names the functions it calls beside its loss (a GAN's update_D/update_G)
    # in its ``calls`` attribute.
    trainer = [step, getattr(step, "loss_fn", None), *getattr(step, "calls", ()), *_LOOP_CODE]
    parts = {
        "model": repr(model),
        "model_code": _model_code(model),
        "config": asdict(config),
        "train_code": [
            f"{f.__module__}.{f.__qualname__}:{_code_digest(f)}" for f in trainer if f is not None
        ],
        "data": data_digest,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]


def _save(state: dict | Callable[[Path], None], path: Path) -> bool:
    """Write ``state`` to ``path`` atomically (``torch.save``, or ``state(file)`` where it is a
    function that writes a file); ``False`` when the folder is read-only."""
    partial = path.with_name(f".{path.stem}.{os.getpid()}.part{path.suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if callable(state):
            state(partial)
        else:
            torch.save(state, partial)
        partial.replace(path)  # an interrupted save never leaves a broken cache entry
    except OSError:
        return False
    return True


def train_cached(
    make_model: Callable[[], nn.Module],
    inputs: torch.Tensor,
    targets: torch.Tensor,
    config: TrainConfig = TrainConfig(),
    loss_fn: Loss = binary_cross_entropy,
    name: str = "model",
    step: StepFactory | None = None,
    course: bool = False,
) -> tuple[nn.Module, History]:
    """Train ``make_model()`` with :func:`fit`, or load it if this exact training ran before.

    The cache key covers the model's architecture and the code of its classes, ``config``,
    the step and ``loss_fn`` with their code, the training loop's code and the data's
    contents, so nothing trains twice and nothing stale is reused. ``course=True`` keeps the
    model in the course cache (:func:`course_cache_dir`) instead of the model cache.
    """
    step = step or supervised_step(loss_fn)
    digest = fingerprint(inputs, targets)
    model, path, history = _load_cached(make_model, config, step, digest, name, course)
    if history is not None:
        return model, history
    shown = os.path.relpath(path.parent)
    loader = data.make_loader(inputs, targets, config.batch_size, seed=config.seed)
    history = fit(model, loader, config, step=step)
    if _save({"state_dict": model.state_dict(), "history": history}, path):
        print(f"{name}: trained for {config.epochs} epochs, cached in {shown}")
    else:
        print(f"{name}: trained for {config.epochs} epochs; not cached, {shown} is read-only")
    return model, history


def _load_cached(
    make_model: Callable[[], nn.Module],
    config: TrainConfig,
    step: StepFactory,
    data_digest: str,
    name: str,
    course: bool,
) -> tuple[nn.Module, Path, History | None]:
    """The seeded new model, its cache file, and its history where the file holds it trained
    (the model then loaded); ``None`` where it must train."""
    seed_everything(config.seed)
    model = make_model().to(get_device())
    key = _cache_key(model, config, step, data_digest)
    folder = course_cache_dir() if course else cache_dir()
    path = folder / f"{name}-{key}.pt"
    if not path.is_file():
        return model, path, None
    saved = torch.load(path, map_location=get_device(), weights_only=True)
    model.load_state_dict(saved["state_dict"])
    print(f"{name}: loaded the trained model from {os.path.relpath(folder)}")
    return model, path, list(saved["history"])


def load_cached(
    make_model: Callable[[], nn.Module],
    data_digest: str,
    config: TrainConfig = TrainConfig(),
    name: str = "model",
    step: StepFactory | None = None,
    course: bool = False,
) -> nn.Module | None:
    """The model :func:`train_cached` trained on data of :func:`fingerprint` ``data_digest``
    (with the same other arguments), loaded from the cache; ``None`` if it never trained. For a
    course model whose data has a stored fingerprint (:func:`stored_fingerprint`)."""
    model, _, history = _load_cached(
        make_model, config, step or supervised_step(binary_cross_entropy), data_digest, name, course
    )
    return model if history is not None else None


def stored_fingerprint(
    name: str, recipe: str, tensors: Callable[[], tuple[torch.Tensor, ...]]
) -> str:
    """The :func:`fingerprint` of ``tensors()``, kept in the course cache as
    ``<name>-<recipe>.sha256`` (``recipe``: a digest of everything the tensors follow from,
    e.g. :func:`lib.data.natural_patches_recipe`), so that the next process finds a course
    model without building its data. A stored index of the data, not a copy of it."""
    path = course_cache_dir() / f"{name}-{recipe}.sha256"
    if path.is_file():
        return path.read_text(encoding="ascii").strip()
    digest = fingerprint(*tensors())
    _save(lambda file: file.write_text(digest, encoding="ascii"), path)
    return digest


_COURSE_MODELS: dict[str, Callable[[], nn.Module]] = {}


def course_model(function: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
    """Register ``function``, which returns a trained course model (through
    :func:`train_cached` with ``course=True``), so that ``python -m lib course-models``
    trains it ahead of the chapters, the exercises and the grader."""
    _COURSE_MODELS[f"{function.__module__}.{function.__qualname__}"] = function
    return function


def course_models() -> dict[str, Callable[[], nn.Module]]:
    """Every registered course model, by qualified name (imports all of ``lib`` first, so
    that every module's registrations are seen)."""
    import lib

    for module in pkgutil.iter_modules(lib.__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"lib.{module.name}")
    return dict(sorted(_COURSE_MODELS.items()))
