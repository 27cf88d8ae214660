"""Tests of lib.device: automatic choice, override, and clear errors."""

from __future__ import annotations

import pytest
import torch

from lib import device as dev


def test_default_is_the_fastest_available(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(dev.DEVICE_ENV, raising=False)
    assert dev.get_device().type == dev.available_devices()[0]
    assert dev.available_devices()[-1] == "cpu"


def test_cuda_is_preferred_when_present(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(dev.DEVICE_ENV, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert dev.get_device() == torch.device("cuda")


def test_override_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(dev.DEVICE_ENV, "CPU")
    assert dev.get_device() == torch.device("cpu")


def test_unknown_kind_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(dev.DEVICE_ENV, "tpu")
    with pytest.raises(ValueError, match="XNN_DEVICE='tpu'"):
        dev.get_device()


def test_missing_kind_is_an_error_not_a_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv(dev.DEVICE_ENV, "cuda")
    with pytest.raises(RuntimeError, match="does not have"):
        dev.get_device()


def test_device_fixture_sets_the_override(device: torch.device) -> None:
    assert dev.get_device() == device
    assert torch.ones(2, device=device).sum().item() == 2
