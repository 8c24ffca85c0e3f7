"""The device fingerprint stored with every measurement, so a number is compared only with its like.

A measurement is comparable with another when their ``key`` is equal: same CPU model and relevant
instruction-set flags (or GPU), same onnxruntime version, execution provider and options, threads,
affinity, batch size and graph optimization level.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import shutil
import subprocess
from typing import TYPE_CHECKING, Any

import onnxruntime as ort

from autocl.openvino_session import OPENVINO, openvino_version

if TYPE_CHECKING:
    from autocl.hardware._profile import HardwareProfile

# the flags that decide which kernels onnxruntime picks (fp32 vector width, int8 dot products, bf16)
RELEVANT_FLAGS = (
    "sse4_1",
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
    "asimd",
    "asimddp",
    "i8mm",
    "sve",
    "bf16",
)
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")


@functools.lru_cache(maxsize=1)
def cpu_info() -> tuple[str, tuple[str, ...]]:
    """CPU model name and its relevant flags (Linux ``/proc/cpuinfo``; the platform elsewhere)."""
    name: str | None = None
    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if name is None and key in ("model name", "Model", "cpu model"):
                    name = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    model = name or platform.processor() or platform.machine()
    return model, tuple(f for f in RELEVANT_FLAGS if f in flags)


@functools.lru_cache(maxsize=1)
def gpu_name() -> str | None:
    """The first GPU's name as nvidia-smi reports it, or None."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return None
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True,
            check=False,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    lines = out.stdout.strip().splitlines()
    return lines[0].strip() if out.returncode == 0 and lines else None


def has_int8_dot() -> bool:
    """Whether this CPU has int8 dot-product instructions (VNNI, AMX, ARM dotprod/i8mm).

    Returns:
        True when one of their CPU flags is present.
    """
    _, flags = cpu_info()
    return any(f in flags for f in VNNI_FLAGS)


def int8_warning() -> str | None:
    """Why int8 may be slower than fp32 on this CPU.

    Returns:
        The warning, or None when the CPU has int8 dot-product units.
    """
    _, flags = cpu_info()
    if any(f in flags for f in VNNI_FLAGS):
        return None
    return "this CPU has no int8 dot-product instructions (VNNI/AMX/dotprod): int8 is often slower than fp32 here"


def host_key() -> str:
    """Names this machine: one measurement lease per machine, whatever the profile.

    Returns:
        A short hash of the host name and CPU model.
    """
    model, _ = cpu_info()
    return hashlib.sha256(f"{platform.node()}|{model}".encode()).hexdigest()[:12]


def _key(d: dict[str, Any]) -> str:
    fields = (
        "cpu",
        "cpu_flags",
        "gpu",
        "onnxruntime",
        "execution_provider",
        "provider_options",
        "threads",
        "affinity",
        "batch_size",
        "graph_optimization",
        "enable_cpu_mem_arena",
    )
    keyed = {k: d.get(k) for k in fields}
    if d.get("openvino"):  # only OpenVINO profiles carry it: the keys of onnxruntime measurements stay as they were
        keyed["openvino"] = d["openvino"]
    return hashlib.sha256(json.dumps(keyed, sort_keys=True, default=str).encode()).hexdigest()[:16]


def device_description(profile: HardwareProfile, *, pinned: list[int] | None = None) -> dict[str, Any]:
    """Everything a latency depends on besides the artifact, and ``key``: its hash.

    Args:
        profile: The profile the measurement runs with.
        pinned: The CPUs the measurement is pinned to.

    Returns:
        The host, OS, CPU, GPU, onnxruntime version and session settings, and their hash as ``key``.
    """
    model, flags = cpu_info()
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    d: dict[str, Any] = {
        "host": platform.node(),
        "os": platform.platform(terse=True),
        "cpu": model,
        "cpu_flags": list(flags),
        "cores": os.cpu_count(),
        "usable_cpus": allowed,
        "gpu": gpu_name() if profile.execution_provider not in ("CPUExecutionProvider", OPENVINO) else None,
        "onnxruntime": ort.__version__,
        "openvino": openvino_version() if profile.execution_provider == OPENVINO else None,
        "execution_provider": profile.execution_provider,
        "provider_options": dict(profile.provider_options),
        "threads": profile.threads,
        "affinity": pinned,
        "batch_size": profile.batch_size,
        "graph_optimization": profile.graph_optimization,
        "enable_cpu_mem_arena": profile.enable_cpu_mem_arena,
    }
    d["key"] = _key(d)
    return d


def comparable(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    """Whether two measurements' devices match (same ``key``).

    Args:
        a: A device description (see :func:`device_description`), or None.
        b: Another one, or None.

    Returns:
        True when both are given and have the same non-empty ``key``.
    """
    return bool(a and b and a.get("key") and a.get("key") == b.get("key"))
