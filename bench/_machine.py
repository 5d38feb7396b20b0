"""The machine line every benchmark prints first: CPU, OS, Python, jax and its devices."""

from __future__ import annotations

import os
import platform

import jax


def machine_info() -> str:
    """Two lines: machine, CPU model, CPU count, OS; Python, jax version and devices."""
    cpu = platform.processor() or "unknown cpu"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    devices = ", ".join(str(d) for d in jax.devices())
    return (
        f"machine: {platform.machine()} {cpu}, {os.cpu_count()} cpus, {platform.system()} "
        f"{platform.release()}\npython {platform.python_version()}, jax {jax.__version__}, "
        f"devices: {devices}"
    )
