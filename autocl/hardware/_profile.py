"""Hardware profiles: the target a configuration is measured on, as validated YAML data.

A profile says where latency is measured (``measure: local``, or ``remote`` through a latency
agent running on the device), with which execution provider and options, threads, batch size and
input shapes; which precisions the target's execution provider runs (the search space is narrowed
to them, and the narrowing is reported);
optional budgets that become constraints of the search; and the measurement protocol's settings.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Literal, Union, cast

from pydantic import BaseModel, ConfigDict, Field, model_validator

from autocl.config import PRECISIONS, Precision, load_yaml, validate_model
from autocl.errors import ProfileError
from autocl.openvino_session import OPENVINO, OPENVINO_PRECISIONS, openvino_missing

PROFILE_DIR = Path("hardware_profiles")

PROVIDER_PRECISIONS: dict[str, tuple[str, ...]] = {
    "CPUExecutionProvider": ("fp32", "int8", "int8_dynamic", "int4"),
    "CUDAExecutionProvider": ("fp32", "fp16"),
    OPENVINO: OPENVINO_PRECISIONS,
}
"""What an execution provider runs with real kernels (onnxruntime 1.32; ``autocl.compress.support``
probes it per op): a profile's ``precisions`` when it gives none. The CPU provider runs static
int8 (QDQ), dynamic int8 and weight-only int4 (MatMulNBits, MatMul/Gemm only: Conv refuses it per
op); whether one is *fast* on a given CPU is for the search's measurements to decide. Static int8
on CUDA runs as fp32 plus conversions (its int8 kernels need TensorRT). Another provider gets every
precision, and the per-op probe refuses what it cannot run."""

PROVIDER_GAPS: dict[tuple[str, str], str] = {
    ("CPUExecutionProvider", "fp16"): (
        "the CPU provider has no float16 kernels: onnxruntime casts to float32, computes and casts back"
    ),
    ("CUDAExecutionProvider", "int8"): "static int8 runs as fp32 plus conversions on CUDA (int8 kernels need TensorRT)",
    (OPENVINO, "fp16"): "OpenVINO's CPU plugin decompresses float16 weights to float32 under the f32 precision hint",
    (OPENVINO, "int8_dynamic"): "OpenVINO computes dynamic int8 Conv/MatMul in float32 (only int8 tables stay int8)",
}
"""Why a provider's default leaves a precision out, for the line that reports a narrowed space."""


@functools.cache
def _load_cuda_libraries() -> None:
    """Load CUDA's and cuDNN's libraries from the nvidia-* wheels that ``onnxruntime-gpu[cuda,cudnn]``
    installs (``make gpu-install``), once per process: with torch's CPU build nothing else loads them,
    and the CUDA provider would fail when its first session opens. A system CUDA (LD_LIBRARY_PATH)
    needs none of this, and a failure here leaves the session to say what is missing."""
    import onnxruntime as ort

    preload = getattr(ort, "preload_dlls", None)
    if preload is not None:
        try:
            preload()
        except Exception:  # the session that follows reports the missing library
            pass


def default_precisions(provider: str) -> list[Precision]:
    """The precisions a profile for ``provider`` runs when its YAML lists none.

    Args:
        provider: The onnxruntime execution provider.

    Returns:
        The provider's precisions (``PROVIDER_PRECISIONS``), else every precision.
    """
    return cast("list[Precision]", list(PROVIDER_PRECISIONS.get(provider, PRECISIONS)))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MeasurementSettings(_Strict):
    """The measurement protocol (see ``autocl.hardware._measure``): warm-up, then timed runs until
    ``min_repeats`` undisturbed samples over ``min_seconds`` give a median whose 95% confidence
    interval is within ``target_rel_ci`` of it; at most ``repeats`` runs or ``max_seconds``."""

    warmup: int = Field(10, ge=0, le=10_000, description="untimed runs first (allocations, caches)")
    warmup_seconds: float = Field(0.02, ge=0, le=60, description="and untimed runs for at least this long")
    repeats: int = Field(2000, ge=3, le=1_000_000, description="timed runs at most")
    min_repeats: int = Field(
        10,
        ge=3,
        le=100_000,
        description=("undisturbed timed runs wanted before stopping early; runs taken even past max_seconds"),
    )
    min_seconds: float = Field(
        0.05,
        ge=0,
        le=600,
        description=("timed runs last at least this long per artifact (short windows of tiny models drift)"),
    )
    max_seconds: float = Field(5.0, gt=0, le=3600, description="time cap on the timed runs of one artifact")
    target_rel_ci: float = Field(
        0.01,
        ge=0,
        le=1,
        description=(
            "stop early once the 95% CI half-width of the median is this fraction of it (0: always take `repeats`)"
        ),
    )
    noise_floor: float = Field(
        0.03,
        ge=0,
        le=1,
        description=("relative latency changes below this are noise when a front is re-measured, whatever the CIs say"),
    )
    memory: bool = Field(True, description="measure the session's memory (a fresh process) with every trial")
    lease_timeout_s: float = Field(900.0, gt=0, description="longest wait for the device's measurement lease")


class Budgets(_Strict):
    """Limits a configuration must meet on this target; each set one becomes a search constraint."""

    latency_ms: float | None = Field(None, gt=0, description="median latency of one batch")
    memory_mb: float | None = Field(None, gt=0, description="peak private memory of the inference session (peak_mb)")
    size_mb: float | None = Field(
        None, gt=0, description="artifact size, palettized and deflated (autocl.compress.size)"
    )

    def items(self) -> list[tuple[str, float]]:
        """The budgets that are set.

        Returns:
            ``(name, limit)`` pairs, leaving out the unset ones.
        """
        return [(k, v) for k, v in self.model_dump().items() if v is not None]


class RemoteSettings(_Strict):
    """Where the latency agent of a remote device listens (see ``autocl agent``)."""

    url: str = Field(pattern=r"^https?://", description="e.g. http://192.168.1.20:8765")
    token_file: str | None = Field(None, description="file holding the agent's token (~ is expanded)")
    token_env: str | None = Field(None, description="environment variable holding the token instead")
    timeout_s: float = Field(300.0, gt=0, le=7200, description="longest wait for one measurement request")

    @model_validator(mode="after")
    def _one_token_source(self) -> RemoteSettings:
        if not self.token_file and not self.token_env:
            raise ValueError("give token_file or token_env: the agent refuses requests without its token")
        return self

    def token(self) -> str:
        """The agent's token, from the environment variable or the file.

        Returns:
            The token, stripped.

        Raises:
            ProfileError: The variable is empty or unset (and no file is given), or the file cannot be
                read or is empty; the error says which one.
        """
        if self.token_env:
            value = os.environ.get(self.token_env, "").strip()
            if value:
                return value
            if not self.token_file:
                raise ProfileError(
                    f"environment variable {self.token_env} is empty or unset; export the agent's token there",
                    field="remote.token_env",
                )
        path = Path(os.path.expanduser(self.token_file or ""))
        try:
            value = path.read_text().strip()
        except OSError as exc:
            raise ProfileError(
                f"cannot read the agent token file {path} ({exc.strerror}); copy the token the "
                "agent was started with there",
                field="remote.token_file",
            ) from None
        if not value:
            raise ProfileError(f"the agent token file {path} is empty", field="remote.token_file")
        return value


Affinity = Union[Literal["none", "auto"], list[int]]


class HardwareProfile(_Strict):
    """One target: where and how latency is measured, what its provider runs, and its budgets."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    measure: Literal["local", "remote"] = Field("local", description="measure here, or on a device's latency agent")
    remote: RemoteSettings | None = None
    execution_provider: str = Field(
        "CPUExecutionProvider",
        description=(
            f"the onnxruntime execution provider, or {OPENVINO!r}: OpenVINO's own runtime reads the same artifact"
        ),
    )
    provider_options: dict[str, Any] = Field(
        default_factory=dict,
        description="the provider's options; for OpenVINO, `device` (default CPU) and compile properties",
    )
    threads: int = Field(1, ge=1, le=1024, description="intra-op threads of the session")
    affinity: Affinity = Field(
        "none",
        description=(
            "pin the session's threads: 'none', 'auto' (the first `threads` CPUs this process may use) or CPU ids"
        ),
    )
    batch_size: int = Field(1, ge=1, le=65_536)
    input_shapes: dict[str, list[int]] = Field(
        default_factory=dict,
        description=("expected shape of each input, batch first; a workload feeding other shapes is refused"),
    )
    allow_spinning: bool = Field(False, description="let idle intra-op threads spin (steals cores from others)")
    enable_cpu_mem_arena: bool = Field(True, description="onnxruntime's CPU memory arena")
    graph_optimization: Literal["basic", "extended", "all"] = "all"
    precisions: list[Precision] = Field(
        default_factory=lambda: default_precisions("CPUExecutionProvider"),
        min_length=1,
        description=(
            "precisions this target's execution provider runs (default: all it has kernels for, see "
            "PROVIDER_PRECISIONS); the search space is narrowed to them, and says so"
        ),
    )
    budgets: Budgets = Field(default_factory=Budgets)
    measurement: MeasurementSettings = Field(default_factory=MeasurementSettings)

    @model_validator(mode="before")
    @classmethod
    def _provider_precisions(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("precisions") is None:
            provider = data.get("execution_provider", "CPUExecutionProvider")
            data = {**data, "precisions": default_precisions(provider if isinstance(provider, str) else "")}
        return data

    @property
    def runtime(self) -> str:
        """``openvino`` for a profile run by OpenVINO's own runtime, else ``onnxruntime``."""
        return "openvino" if self.execution_provider == OPENVINO else "onnxruntime"

    def left_out(self, precision: str) -> str:
        """Why this profile does not run ``precision``.

        Args:
            precision: A precision name.

        Returns:
            The provider's known gap for it, or else a sentence naming the profile's precisions.
        """
        gap = PROVIDER_GAPS.get((self.execution_provider, precision))
        return gap or f"{self.name} lists only {', '.join(self.precisions)}"

    @model_validator(mode="after")
    def _consistent(self) -> HardwareProfile:
        if self.measure == "remote" and self.remote is None:
            raise ValueError("measure: remote needs a `remote:` section with the agent's url and token")
        if self.measurement.min_repeats > self.measurement.repeats:
            raise ValueError(
                f"measurement.min_repeats ({self.measurement.min_repeats}) must be <= "
                f"measurement.repeats ({self.measurement.repeats})"
            )
        if self.budgets.memory_mb is not None and not self.measurement.memory:
            raise ValueError("budgets.memory_mb needs measurement.memory: true (memory is what it limits)")
        if isinstance(self.affinity, list) and len(self.affinity) != self.threads:
            raise ValueError(
                f"affinity lists {len(self.affinity)} CPU(s) but threads is {self.threads}: give one CPU per thread"
            )
        for name, shape in self.input_shapes.items():
            if not shape or shape[0] != self.batch_size or any(d < 1 for d in shape):
                raise ValueError(
                    f"input_shapes.{name} = {shape}: dimensions must be positive and the first "
                    f"one is the batch size ({self.batch_size})"
                )
        return self

    def unavailable_reason(self) -> str | None:
        """Why this profile cannot be measured locally.

        Remote profiles are checked by their agent, on the device.

        Returns:
            The reason (execution provider not available, affinity CPUs not usable), or None.
        """
        if self.measure == "remote":
            return None
        if self.execution_provider == OPENVINO:
            return openvino_missing()
        import onnxruntime as ort

        available = ort.get_available_providers()
        if self.execution_provider not in available:
            return (
                f"execution provider {self.execution_provider!r} is not available in this onnxruntime "
                f"({ort.__version__}; available: {', '.join(available)}). Use a profile for one of those, "
                "or install the onnxruntime build that provides it"
                + (
                    " (`make gpu-install` on a machine with an NVIDIA GPU installs onnxruntime-gpu)"
                    if self.execution_provider == "CUDAExecutionProvider"
                    else ""
                )
                + (
                    " (for OpenVINO's own runtime, which autocl runs beside onnxruntime, write `execution_provider: "
                    f"{OPENVINO}`)"
                    if self.execution_provider == "OpenVINOExecutionProvider"
                    else ""
                )
            )
        if self.execution_provider == "CUDAExecutionProvider":
            _load_cuda_libraries()
        if isinstance(self.affinity, list):
            allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
            missing = [c for c in self.affinity if allowed and c not in allowed]
            if missing:
                return f"affinity CPU(s) {missing} are not usable here (this process may use {allowed})"
        return None

    def check_available(self) -> None:
        """Refuse a local profile whose execution provider or CPUs this machine does not offer.

        Raises:
            ProfileError: See :meth:`unavailable_reason`.
        """
        reason = self.unavailable_reason()
        if reason:
            field = "affinity" if reason.startswith("affinity") else "execution_provider"
            raise ProfileError(reason, field=field)

    def check_feed(self, feed: dict[str, Any]) -> None:
        """Refuse a feed whose shapes differ from the declared ``input_shapes``.

        Args:
            feed: An onnxruntime feed.

        Raises:
            ProfileError: A declared input is missing from the feed or has another shape.
        """
        for name, shape in self.input_shapes.items():
            if name not in feed:
                raise ProfileError(
                    f"profile {self.name!r} declares input {name!r} but the workload feeds {sorted(feed)}",
                    field=f"input_shapes.{name}",
                )
            got = list(getattr(feed[name], "shape", ()))
            if got != list(shape):
                raise ProfileError(
                    f"profile {self.name!r} expects input {name!r} of shape {shape} but the "
                    f"workload feeds {got}; fix input_shapes or use another profile",
                    field=f"input_shapes.{name}",
                )


def resolve_profile_path(spec: str | Path) -> Path:
    """A profile file from a path, or from a bare name found in ``hardware_profiles/``.

    Args:
        spec: A path, or a profile name (``NAME.yaml`` or ``NAME.yml`` in ``hardware_profiles/``).

    Returns:
        The profile file's path (``spec`` itself when nothing matches; loading it then fails).
    """
    path = Path(spec)
    if path.is_file() or path.suffix in (".yaml", ".yml"):
        return path
    for candidate in (PROFILE_DIR / f"{spec}.yaml", PROFILE_DIR / f"{spec}.yml"):
        if candidate.is_file():
            return candidate
    return path


def load_profile(path: str | Path, *, check: bool = True) -> HardwareProfile:
    """Load and validate a profile YAML file.

    Errors name the file and the field.

    Args:
        path: A path, or a name in ``hardware_profiles/`` (see :func:`resolve_profile_path`).
        check: Also refuse a profile this machine cannot run.

    Returns:
        The hardware profile.

    Raises:
        ProfileError: The file cannot be read or is not a valid profile, or (with ``check``) this
            machine cannot run it.
    """
    path = resolve_profile_path(path)
    data = load_yaml(path, error=ProfileError)
    if not isinstance(data, dict):
        raise ProfileError(f"expected a mapping at the top level, got {type(data).__name__}", file=str(path))
    profile = validate_model(HardwareProfile, data, source=str(path), error=ProfileError)
    if check:
        try:
            profile.check_available()
        except ProfileError as exc:
            raise ProfileError(
                str(exc).removeprefix(f"field '{exc.field}': "), file=str(path), field=exc.field
            ) from None
    return profile


def profile_from_dict(data: dict[str, Any], *, source: str = "<profile>") -> HardwareProfile:
    """Validate a profile given as a dict (e.g. the settings a study stores).

    Unlike :func:`load_profile`, it does not check that this machine can run the profile.

    Args:
        data: The profile's fields, as in a profile YAML file.
        source: How to name the profile in errors.

    Returns:
        The hardware profile.

    Raises:
        ProfileError: ``data`` is not a valid profile.
    """
    return validate_model(HardwareProfile, data, source=source, error=ProfileError)
