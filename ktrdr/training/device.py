"""Which torch device to compute on: CUDA, then Apple's MPS, then the CPU.

torch is imported inside the functions so that importing this module stays cheap.
"""

from __future__ import annotations

from typing import Any


def best_device() -> str:
    """``"cuda"`` when a CUDA GPU is usable, else ``"mps"`` when available, else ``"cpu"``."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def device_capabilities() -> dict[str, Any]:
    """What a worker advertises: ``{device, gpu, gpu_type, gpu_count, torch_version}``."""
    import torch

    device = best_device()
    gpu_type = {"cuda": "CUDA", "mps": "MPS"}.get(device)
    if device == "cuda":
        gpu_count = torch.cuda.device_count()
    elif device == "mps":
        gpu_count = 1
    else:
        gpu_count = 0
    return {
        "device": device,
        "gpu": gpu_type is not None,
        "gpu_type": gpu_type,
        "gpu_count": gpu_count,
        "torch_version": torch.__version__,
    }
