"""Device choice: CUDA, then MPS, then the CPU."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from ktrdr.training.device import best_device, device_capabilities  # noqa: E402


def test_prefers_cuda_then_mps_then_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert best_device() == "cpu"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert best_device() == "mps"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert best_device() == "cuda"


def test_capabilities_describe_the_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert device_capabilities() == {
        "device": "cpu",
        "gpu": False,
        "gpu_type": None,
        "gpu_count": 0,
        "torch_version": torch.__version__,
    }
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    caps = device_capabilities()
    assert (caps["device"], caps["gpu"], caps["gpu_type"], caps["gpu_count"]) == ("cuda", True, "CUDA", 2)


def test_the_real_device_is_usable() -> None:
    device = best_device()
    assert torch.ones(2, device=device).sum().item() == 2.0
