"""What a measurement ran on: CPU, threads, library versions, and the GPU with its driver."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess

import numpy as np
import torch


def cpu_model() -> str:
    """The CPU's model name as the kernel reports it (falls back to the platform's processor string)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def nvidia_driver() -> str | None:
    """The NVIDIA driver version from nvidia-smi, or None where it is not installed."""
    if shutil.which("nvidia-smi") is None:
        return None
    query = ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]
    try:
        return (
            subprocess.run(query, capture_output=True, text=True, timeout=10, check=True).stdout.split("\n")[0].strip()
        )
    except (OSError, subprocess.SubprocessError):
        return None


def gpu_info() -> dict | None:
    """The first CUDA device's name, memory, driver and CUDA version, or None without one."""
    if not torch.cuda.is_available():
        return None
    properties = torch.cuda.get_device_properties(0)
    return {
        "name": properties.name,
        "memory_bytes": properties.total_memory,
        "driver": nvidia_driver(),
        "cuda": torch.version.cuda,
    }


def machine_info() -> dict:
    """Versions and hardware, for JSON reports and pytest-benchmark's machine info."""
    return {
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "gpu": gpu_info(),
    }
