"""Which devices a run may use: ``auto`` means the CPU plus every available accelerator."""

from __future__ import annotations

import functools
import platform

from .errors import UsageError


def available_devices() -> list[str]:
    """The CPU, every CUDA device torch can see, and MPS when present."""
    import torch

    devices = ["cpu"]
    if torch.cuda.is_available():
        count = torch.cuda.device_count()
        devices += ["cuda"] if count == 1 else [f"cuda:{i}" for i in range(count)]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.append("mps")
    return devices


def resolve_devices(spec: str | list[str]) -> list[str]:
    """Turn ``--device`` into a checked list of torch device strings."""
    items = spec if isinstance(spec, list) else [s.strip() for s in spec.split(",")]
    items = [i for i in items if i]
    if not items:
        raise UsageError("is empty; use auto, or a list such as cpu,cuda", param="device")
    devices: list[str] = []
    for item in items:
        for device in available_devices() if item == "auto" else [_check(item)]:
            if device not in devices:
                devices.append(device)
    return devices


def _check(device: str) -> str:
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise UsageError(f"unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cpu":
        return "cpu"
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise UsageError(f"device {device!r} is not available: torch sees no CUDA device")
        if dev.index is not None and dev.index >= count:
            raise UsageError(
                f"device {device!r} is not available: torch sees {count} CUDA device(s)"
            )
        return str(dev)
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise UsageError(f"device {device!r} is not available on this machine")
        return "mps"
    raise UsageError(f"device type {dev.type!r} is not supported; use cpu, cuda or mps")


@functools.cache
def device_name(device: str) -> str:
    """A human name for the hardware behind ``device`` (CPU model, GPU model)."""
    import torch

    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    if dev.type == "mps":
        return f"Apple {platform.machine()} (MPS)"
    return _cpu_model()


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"
