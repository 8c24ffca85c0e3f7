"""The client of the latency agent: what a ``measure: remote`` profile uses to measure artifacts."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from autocl.errors import ProfileError
from autocl.hardware._measure import Measurement, memory_flags
from autocl.hardware._profile import HardwareProfile
from autocl.hardware._wire import encode_artifacts, encode_feed


def _url(profile: HardwareProfile, endpoint: str) -> str:
    assert profile.remote is not None
    return profile.remote.url.rstrip("/") + endpoint


def agent_health(profile: HardwareProfile, *, timeout_s: float = 2.0) -> dict:
    """The remote agent's ``/health`` answer.

    Args:
        profile: A remote profile (its ``remote.url``).
        timeout_s: How long to wait for the answer.

    Returns:
        The decoded JSON answer.

    Raises:
        ProfileError: The agent cannot be reached or does not answer JSON.
    """
    url = _url(profile, "/health")
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return json.loads(resp.read())
    except (urllib.error.URLError, OSError, json.JSONDecodeError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ProfileError(
            f"latency agent at {url} is not reachable ({reason}); start it on the device with "
            "'autocl agent --host ADDRESS --port PORT --token-file FILE'",
            field="remote.url",
        ) from None


def measure_remote(
    paths: Sequence[str | Path],
    profile: HardwareProfile,
    feed: dict[str, np.ndarray],
    *,
    memory: bool | Sequence[bool] = False,
) -> list[Measurement]:
    """Measure the artifacts on the profile's remote agent.

    The artifacts and the feed are sent to the agent; it measures them interleaved, as
    ``measure_local`` does here, and answers with its statistics and its device's fingerprint.

    Args:
        paths: The ONNX artifacts.
        profile: A remote profile (with ``remote`` settings).
        feed: One batch of inputs of the profile's shapes.
        memory: Whose memory is measured too: one flag, or one per artifact.

    Returns:
        One ``Measurement`` per artifact, in the order of ``paths``.

    Raises:
        ProfileError: The feed's shapes differ from the profile's, or the agent cannot be reached,
            times out or refuses the request.
    """
    assert profile.remote is not None
    profile.check_feed(feed)
    local = profile.model_dump(mode="json", exclude={"remote", "measure"})
    body = json.dumps(
        {
            "profile": local,
            "memory": memory_flags(memory, len(paths)),
            "feed": encode_feed(feed),
            "artifacts": encode_artifacts([(Path(p).name, Path(p).read_bytes()) for p in paths]),
        }
    ).encode()
    url = _url(profile, "/measure")
    req = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {profile.remote.token()}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=profile.remote.timeout_s) as resp:
            answer = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            reason = json.loads(exc.read()).get("error", exc.reason)
        except (ValueError, OSError):
            reason = exc.reason
        raise ProfileError(
            f"latency agent at {url} refused the request ({exc.code}): {reason}", field="remote"
        ) from None
    except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ProfileError(
            f"latency agent at {url} did not answer ({reason}); check that 'autocl agent' runs "
            f"there, or raise remote.timeout_s ({profile.remote.timeout_s:g} s)",
            field="remote.url",
        ) from None
    results = [
        Measurement.from_dict({**m, "profile": profile.name, "agent": profile.remote.url})
        for m in answer.get("measurements", [])
    ]
    if len(results) != len(paths):
        raise ProfileError(
            f"latency agent at {url} answered {len(results)} measurement(s) for {len(paths)} "
            "artifact(s); is it the same autocl version?",
            field="remote",
        )
    return results
