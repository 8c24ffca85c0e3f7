"""Hardware profiles, the latency measurement protocol, memory, per-layer latency attribution, the
measurement lease, and the remote latency agent with its client."""

from autocl.hardware._agent import AgentServer, read_token_file, serve
from autocl.hardware._client import agent_health, measure_remote
from autocl.hardware._device import comparable, cpu_info, device_description, has_int8_dot, host_key, int8_warning
from autocl.hardware._latency import measure_latency, measure_many
from autocl.hardware._layer_latency import OTHER, layer_latency_shares
from autocl.hardware._lease import DeviceLease, lease_dir
from autocl.hardware._measure import (
    Measurement,
    measure_local,
    median_ci,
    open_session,
    pinned_cpus,
    relative_ci,
    session_options,
    summarize,
    time_interleaved,
)
from autocl.hardware._memory import measure_memory
from autocl.hardware._profile import (
    PROVIDER_PRECISIONS,
    Budgets,
    HardwareProfile,
    MeasurementSettings,
    RemoteSettings,
    default_precisions,
    load_profile,
    profile_from_dict,
    resolve_profile_path,
)

__all__ = [
    "OTHER",
    "PROVIDER_PRECISIONS",
    "AgentServer",
    "Budgets",
    "DeviceLease",
    "HardwareProfile",
    "Measurement",
    "MeasurementSettings",
    "RemoteSettings",
    "agent_health",
    "comparable",
    "cpu_info",
    "default_precisions",
    "device_description",
    "has_int8_dot",
    "host_key",
    "int8_warning",
    "layer_latency_shares",
    "lease_dir",
    "load_profile",
    "measure_latency",
    "measure_local",
    "measure_many",
    "measure_memory",
    "measure_remote",
    "median_ci",
    "open_session",
    "pinned_cpus",
    "profile_from_dict",
    "read_token_file",
    "relative_ci",
    "resolve_profile_path",
    "serve",
    "session_options",
    "summarize",
    "time_interleaved",
]
