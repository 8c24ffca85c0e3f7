"""Hardware profiles and latency measurement with onnxruntime."""

from autocl.hardware._measure import Measurement, device_description, measure_latency, open_session, session_options
from autocl.hardware._profile import HardwareProfile, MeasurementSettings, load_profile, profile_from_dict

__all__ = [
    "HardwareProfile", "Measurement", "MeasurementSettings", "device_description", "load_profile",
    "measure_latency", "open_session", "profile_from_dict", "session_options",
]
