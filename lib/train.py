"""The loss of eq. 2, the course's one training loop, and its on-disk model cache."""

from __future__ import annotations

import hashlib
import inspect
import json
import marshal
import os
import random
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from lib import data, models
from lib.device import get_device

#: Folder for trained models; defaults to ``.cache/models`` in the repository.
CACHE_DIR_ENV = "XNN_CACHE_DIR"

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


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
    lr: float = 0.1  # step size of SGD
    momentum: float = 0.9  # SGD momentum; 0 gives plain gradient descent
    seed: int = 0  # seeds initialisation and shuffling

    def __post_init__(self) -> None:
        checks = {
            "epochs": self.epochs >= 1,
            "batch_size": self.batch_size >= 1,
            "lr": self.lr > 0,
            "momentum": 0 <= self.momentum < 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(
                    f"TrainConfig({name}={getattr(self, name)!r}) is out of range: epochs and "
                    "batch_size must be at least 1, lr positive, momentum in [0, 1)."
                )


def fit(
    model: nn.Module,
    loader: DataLoader,
    config: TrainConfig = TrainConfig(),
    loss_fn: Loss = binary_cross_entropy,
    device: torch.device | None = None,
) -> list[float]:
    """Minimise ``loss_fn`` over ``loader`` with SGD; returns the mean loss of each epoch.

    The one training loop of the course (chapter 1 trains eq. 1 under eq. 2 with it).
    """
    device = device or get_device()
    model.to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
    history = []
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
            loss = loss_fn(model(inputs), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(inputs)
            count += len(inputs)
            progress.update()
        history.append(total.item() / count)
        progress.set_postfix(loss=f"{history[-1]:.4f}")
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


def cache_dir() -> Path:
    """Where trained models are kept: ``$XNN_CACHE_DIR`` or ``.cache/models`` in the repo."""
    configured = os.environ.get(CACHE_DIR_ENV)
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parent.parent / ".cache" / "models"


def fingerprint(*tensors: torch.Tensor) -> str:
    """A digest of tensors' contents, so that other data means another cache entry."""
    digest = hashlib.sha256()
    for tensor in tensors:
        digest.update(str((tuple(tensor.shape), tensor.dtype)).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _code_digest(function: Callable) -> str:
    """A digest of a function's code, so that editing a loss (even one defined in a
    notebook, under the same name) retrains."""
    try:
        code = inspect.getsource(function).encode()
    except (OSError, TypeError):  # no source file: fall back to the compiled code
        code = marshal.dumps(function.__code__)
    return hashlib.sha256(code).hexdigest()


def _cache_key(model: nn.Module, config: TrainConfig, loss_fn: Loss, data_digest: str) -> str:
    # The training code itself is part of the key: editing the loop or a model retrains.
    code = "".join(inspect.getsource(module) for module in (models, data, sys.modules[__name__]))
    parts = {
        "model": repr(model),
        "config": asdict(config),
        "loss": f"{loss_fn.__module__}.{loss_fn.__qualname__}:{_code_digest(loss_fn)}",
        "data": data_digest,
        "code": hashlib.sha256(code.encode()).hexdigest(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]


def train_cached(
    make_model: Callable[[], nn.Module],
    inputs: torch.Tensor,
    targets: torch.Tensor,
    config: TrainConfig = TrainConfig(),
    loss_fn: Loss = binary_cross_entropy,
    name: str = "model",
) -> tuple[nn.Module, list[float]]:
    """Train ``make_model()`` with :func:`fit`, or load it if this exact training ran before.

    The cache key covers the model, ``config``, ``loss_fn`` and its code, the data's contents
    and the library's training code, so nothing trains twice and nothing stale is reused.
    """
    seed_everything(config.seed)
    model = make_model().to(get_device())
    key = _cache_key(model, config, loss_fn, fingerprint(inputs, targets))
    path = cache_dir() / f"{name}-{key}.pt"
    if path.is_file():
        saved = torch.load(path, map_location=get_device(), weights_only=True)
        model.load_state_dict(saved["state_dict"])
        print(f"{name}: loaded the trained model from {os.path.relpath(path.parent)}")
        return model, list(saved["history"])
    loader = data.make_loader(inputs, targets, config.batch_size, seed=config.seed)
    history = fit(model, loader, config, loss_fn)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part")
    torch.save({"state_dict": model.state_dict(), "history": history}, partial)
    partial.replace(path)  # atomic: an interrupted save never leaves a broken cache entry
    print(f"{name}: trained for {config.epochs} epochs, cached in {os.path.relpath(path.parent)}")
    return model, history
