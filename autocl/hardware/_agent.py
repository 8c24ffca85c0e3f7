"""The latency agent: runs on a target device and measures artifacts sent to it over HTTP.

It runs the same protocol as a local measurement (``measure_local``: lease, warm-up, interleaved
timed runs, statistics, memory) with the device's own onnxruntime, and answers the statistics with
the device's fingerprint. Requests carry a bearer token, compared in constant time. A request body
over the size limit is refused before it is read. Artifacts are written to a temporary directory
deleted when the request ends. A bad request gets a 4xx and a JSON ``{"error": reason}``; the
agent keeps serving. The wire format is in ``_wire``.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import onnxruntime as ort

import autocl
from autocl.errors import AutoclError, ConfigError
from autocl.hardware._device import cpu_info, device_description, gpu_name
from autocl.hardware._measure import measure_local, memory_flags
from autocl.hardware._profile import profile_from_dict
from autocl.hardware._wire import WireError, decode_artifacts, decode_feed

MIN_TOKEN_CHARS = 16
_DRAIN_LIMIT = 8 << 20  # read at most this much of a refused body, so the client still gets the answer


def read_token_file(path: str | Path) -> str:
    """Read the agent's token from a file.

    Args:
        path: The token file (``~`` is expanded).

    Returns:
        The token, stripped.

    Raises:
        ConfigError: The file cannot be read, or the token is empty or too short; the error says how
            to make a good one.
    """
    path = Path(path).expanduser()
    how = f"create one with: python -c 'import secrets; print(secrets.token_hex(32))' > {path}"
    try:
        token = path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the token file ({exc.strerror}); {how}", file=str(path)) from None
    if len(token) < MIN_TOKEN_CHARS:
        raise ConfigError(
            f"the token is {len(token)} characters; use at least {MIN_TOKEN_CHARS}: {how}", file=str(path)
        )
    return token


class _Handler(BaseHTTPRequestHandler):
    server: AgentServer
    server_version = f"autocl-agent/{autocl.__version__}"
    timeout = 60  # a stalled client cannot hold a worker thread forever

    def log_message(self, fmt: str, *args: Any) -> None:
        if not self.server.quiet:
            sys.stderr.write(f"agent: {self.address_string()} {fmt % args}\n")

    def _reply(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if status == 401:
            self.send_header("WWW-Authenticate", 'Bearer realm="autocl-agent"')
        self.end_headers()
        self.wfile.write(body)

    def _refuse(self, status: int, reason: str) -> None:
        """Answer an error without reading the body (past a bounded drain), then close."""
        self.close_connection = True
        length = self.headers.get("Content-Length", "")
        if length.isdigit() and 0 < int(length) <= _DRAIN_LIMIT and not getattr(self, "_body_read", False):
            try:  # unread bytes make the kernel reset the connection before the client reads the answer
                self.connection.settimeout(2)
                self.rfile.read(int(length))
            except OSError:
                pass
        self._reply(status, {"error": reason})

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            self._refuse(401, "missing token: send 'Authorization: Bearer <token>' (the agent's --token-file)")
            return False
        if not hmac.compare_digest(header[len("Bearer ") :].strip().encode(), self.server.token.encode()):
            self._refuse(403, "wrong token: use the token in the agent's --token-file")
            return False
        return True

    def do_GET(self) -> None:
        self.server.touch()
        if self.path == "/health":
            self._reply(
                200,
                {
                    "ok": True,
                    "autocl": autocl.__version__,
                    "onnxruntime": ort.__version__,
                    "max_upload_bytes": self.server.max_upload_bytes,
                },
            )
        elif self.path == "/device":
            if self._authorized():
                self._reply(200, self.server.describe())
        else:
            self._refuse(404, f"no such endpoint {self.path!r}; use GET /health, GET /device or POST /measure")

    def do_POST(self) -> None:
        self.server.touch()
        if self.path != "/measure":
            self._refuse(404, f"no such endpoint {self.path!r}; POST /measure")
            return
        if not self._authorized():
            return
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self._refuse(411, "send a Content-Length header")
            return
        if int(length) > self.server.max_upload_bytes:
            self._refuse(
                413,
                f"request body of {int(length)} bytes is over this agent's limit of "
                f"{self.server.max_upload_bytes} bytes (start it with a larger --max-upload-mb)",
            )
            return
        body = self.rfile.read(int(length))
        self._body_read = True
        try:
            status, payload = self.server.measure(body)
        except Exception as exc:  # the agent outlives any one request
            status, payload = 500, {"error": f"agent error: {type(exc).__name__}: {exc}"}
        if status >= 400:
            self.close_connection = True
        self._reply(status, payload)
        self.server.touch()


class AgentServer(ThreadingHTTPServer):
    """The agent's HTTP server; ``measure(body)`` does the work of one request."""

    daemon_threads = True

    def __init__(
        self,
        host: str,
        port: int,
        token: str,
        *,
        max_upload_bytes: int,
        scratch: Path | None = None,
        quiet: bool = False,
    ) -> None:
        super().__init__((host, port), _Handler)
        self.token = token
        self.max_upload_bytes = max_upload_bytes
        self.scratch = scratch
        self.quiet = quiet
        self.last_request = time.monotonic()

    def touch(self) -> None:
        """Record that a request arrived now (for ``idle_exit_s``)."""
        self.last_request = time.monotonic()

    def describe(self) -> dict[str, Any]:
        """What the agent runs on, for ``/health``.

        Returns:
            The autocl and onnxruntime versions, the CPU and its flags, the GPU and the available
            execution providers.
        """
        model, flags = cpu_info()
        return {
            "autocl": autocl.__version__,
            "onnxruntime": ort.__version__,
            "cpu": model,
            "cpu_flags": list(flags),
            "gpu": gpu_name(),
            "providers": ort.get_available_providers(),
        }

    def measure(self, body: bytes) -> tuple[int, dict[str, Any]]:
        """Do the work of one measurement request.

        Args:
            body: The request's JSON body: ``profile``, ``artifacts``, ``feed`` and optionally ``memory``.

        Returns:
            ``(HTTP status, answer)``: 200 with the device description and the measurements; 400 for a
            malformed request, 422 for one this device cannot run, each with an ``error``.
        """
        try:
            req = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return 400, {"error": f"the body is not JSON: {exc}"}
        if not isinstance(req, dict) or not isinstance(req.get("profile"), dict):
            return 400, {"error": "the body must be a JSON object with 'profile', 'artifacts' and 'feed'"}
        try:
            data = {**req["profile"], "measure": "local", "remote": None}
            profile = profile_from_dict(data, source="request profile")
            blobs = decode_artifacts(req.get("artifacts"))
            feed = decode_feed(req.get("feed"))
            memory = memory_flags(req.get("memory", False), len(blobs))
        except (WireError, AutoclError, ValueError, TypeError) as exc:
            return 400, {"error": str(exc)}
        reason = profile.unavailable_reason()
        if reason:
            return 422, {"error": f"this device cannot run profile {profile.name!r}: {reason}"}
        with tempfile.TemporaryDirectory(prefix="autocl-agent-", dir=self.scratch) as tmp:
            paths = []
            for i, blob in enumerate(blobs):
                paths.append(Path(tmp) / f"artifact-{i}.onnx")
                paths[-1].write_bytes(blob)
            try:
                results = measure_local(paths, profile, feed, memory=memory)
            except AutoclError as exc:
                return 422, {"error": str(exc)}
            except Exception as exc:  # onnxruntime refusing the model or the feed
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                return 422, {"error": f"onnxruntime cannot run the request: {type(exc).__name__}: {first[:500]}"}
        return 200, {
            "device": device_description(profile, pinned=results[0].device.get("affinity")),
            "measurements": [m.to_dict() for m in results],
        }


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def serve(
    host: str,
    port: int,
    token: str,
    *,
    max_upload_bytes: int,
    idle_exit_s: float = 0.0,
    scratch: Path | None = None,
    quiet: bool = False,
    announce=print,
) -> None:
    """Run the latency agent's HTTP server until interrupted, or until ``idle_exit_s`` seconds pass without a request.

    Args:
        host: The address to listen on (a warning is announced when it is not loopback).
        port: The port to listen on.
        token: The token clients must present.
        max_upload_bytes: The largest request body accepted.
        idle_exit_s: Exit after this many seconds without a request (0: never).
        scratch: The directory under which each request's uploads get a temporary directory (default:
            the system's temporary directory).
        quiet: Do not log requests.
        announce: Called with the start-up messages.
    """
    server = AgentServer(host, port, token, max_upload_bytes=max_upload_bytes, scratch=scratch, quiet=quiet)
    bound_host, bound_port = server.server_address[:2]
    if isinstance(bound_host, bytes):
        bound_host = bound_host.decode()
    if not _is_loopback(host):
        announce(
            f"warning: listening on {host}, not loopback: anyone who can reach it and holds the token "
            "can run models on this device"
        )
    announce(
        f"autocl agent listening on http://{bound_host}:{bound_port} (onnxruntime {ort.__version__}, "
        f"providers {', '.join(ort.get_available_providers())}, uploads up to {max_upload_bytes} bytes)"
    )
    if idle_exit_s > 0:

        def watchdog() -> None:
            while time.monotonic() - server.last_request < idle_exit_s:
                time.sleep(min(1.0, idle_exit_s / 4))
            server.shutdown()

        threading.Thread(target=watchdog, daemon=True).start()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()


__all__ = ["AgentServer", "read_token_file", "serve"]
