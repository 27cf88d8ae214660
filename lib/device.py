"""Where the course's computations run.

Every chapter calls :func:`get_device` once, so the same notebook uses a GPU when one is
present and the CPU otherwise.
"""

from __future__ import annotations

import os

import torch

#: Environment variable that overrides the automatic choice, e.g. ``XNN_DEVICE=cpu``.
DEVICE_ENV = "XNN_DEVICE"

_KINDS = ("cuda", "mps", "cpu")


def _available(kind: str) -> bool:
    if kind == "cuda":
        return torch.cuda.is_available()
    if kind == "mps":
        return torch.backends.mps.is_available()
    return kind == "cpu"


def available_devices() -> list[str]:
    """Device kinds usable on this machine, fastest first (``cpu`` is always last)."""
    return [kind for kind in _KINDS if _available(kind)]


def get_device() -> torch.device:
    """The device for all chapters: ``cuda``, then ``mps``, then ``cpu``.

    ``XNN_DEVICE`` overrides the choice; a value that names no kind, or a kind this
    machine lacks, is an error rather than a silent fallback.
    """
    requested = os.environ.get(DEVICE_ENV, "").strip().lower()
    if not requested:
        return torch.device(available_devices()[0])
    kind = requested.split(":")[0]
    if kind not in _KINDS:
        raise ValueError(
            f"{DEVICE_ENV}={requested!r} is not a device kind; use one of {', '.join(_KINDS)} "
            f"or unset {DEVICE_ENV} to choose automatically."
        )
    if not _available(kind):
        raise RuntimeError(
            f"{DEVICE_ENV}={requested!r} asks for {kind}, which this machine does not have; "
            f"available: {', '.join(available_devices())}."
        )
    return torch.device(requested)
