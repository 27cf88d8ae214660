"""Shared fixtures: every unit test of ``lib`` that computes runs on each available device."""

from __future__ import annotations

import matplotlib
import pytest
import torch

from lib.device import DEVICE_ENV, available_devices

matplotlib.use("Agg")  # tests draw figures without a screen


@pytest.fixture(params=[kind for kind in available_devices() if kind != "mps"])
def device(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> torch.device:
    """Each device this machine has (cpu always, cuda where present), also set as
    ``XNN_DEVICE`` so that library code choosing its own device picks the same one."""
    monkeypatch.setenv(DEVICE_ENV, request.param)
    return torch.device(request.param)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Unit tests never read or write the course's real model cache."""
    monkeypatch.setenv("XNN_CACHE_DIR", str(tmp_path_factory.mktemp("model-cache")))
