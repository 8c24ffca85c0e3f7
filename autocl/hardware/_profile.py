"""Hardware profiles: the target a configuration is measured on, as validated YAML data."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from autocl.config import load_yaml_model, validate_model
from autocl.errors import ProfileError


class MeasurementSettings(BaseModel):
    """How latency is measured: warm-up runs, then timed runs until ``repeats`` samples are taken
    or ``max_seconds`` have passed (at least ``min_repeats``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    warmup: int = Field(10, ge=0, le=10_000, description="untimed runs first (allocations, caches)")
    repeats: int = Field(50, ge=3, le=100_000, description="timed runs wanted")
    min_repeats: int = Field(10, ge=3, le=100_000, description="timed runs taken even past max_seconds")
    max_seconds: float = Field(5.0, gt=0, le=3600, description="time cap on the timed runs")


class HardwareProfile(BaseModel):
    """One target: execution provider, threads, batch size and measurement settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    execution_provider: str = "CPUExecutionProvider"
    provider_options: dict[str, Any] = Field(default_factory=dict)
    threads: int = Field(1, ge=1, le=1024, description="intra-op threads of the session")
    batch_size: int = Field(1, ge=1, le=65_536)
    allow_spinning: bool = Field(False, description="let idle intra-op threads spin (steals cores from others)")
    graph_optimization: Literal["basic", "extended", "all"] = "all"
    measurement: MeasurementSettings = Field(default_factory=MeasurementSettings)

    def check_available(self) -> None:
        """Refuse a profile whose execution provider this onnxruntime does not offer."""
        import onnxruntime as ort

        available = ort.get_available_providers()
        if self.execution_provider not in available:
            raise ProfileError(
                f"execution provider {self.execution_provider!r} is not available in this onnxruntime "
                f"({ort.__version__}; available: {', '.join(available)}). Use a profile for one of those, "
                "or install the onnxruntime build that provides it",
                field="execution_provider",
            )


def load_profile(path: str | Path) -> HardwareProfile:
    """Load and validate a profile YAML file; errors name the file and the field."""
    profile = load_yaml_model(path, HardwareProfile, error=ProfileError)
    try:
        profile.check_available()
    except ProfileError as exc:
        raise ProfileError(str(exc), file=str(path)) from None
    return profile


def profile_from_dict(data: dict[str, Any], *, source: str = "<profile>") -> HardwareProfile:
    return validate_model(HardwareProfile, data, source=source, error=ProfileError)
