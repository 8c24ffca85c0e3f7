"""The memory probe, run as a script by :mod:`autocl.hardware._memory`; imports nothing of autocl.

It serves JSON-line requests on stdin (model path, feed .npz path, session settings, runs). For
each it forks a child, which creates the inference session, runs it and prints the resident
memory at each step as one JSON line; the child then exits. Forking from this clean process
(numpy and onnxruntime imported, no session ever made) gives every measurement a fresh process
without paying for a Python start-up and imports each time.
"""

import base64
import json
import os
import sys

# y = Identity(x), float[1], opset 13: built once with onnx.helper, kept as bytes so the probe
# imports nothing but numpy and onnxruntime
_IDENTITY_MODEL = "CAg6OgoQCgF4EgF5IghJZGVudGl0eRIEdGlueVoPCgF4EgoKCAgBEgQKAggBYg8KAXkSCgoICAESBAoCCAFCBAoAEA0="


def _status_kb() -> dict:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:", "RssAnon:", "RssFile:", "RssShmem:")):
                key, value = line.split(":", 1)
                out[key] = int(value.split()[0])
    return out


def _reset_peak() -> bool:
    try:  # forget the peak so far, so VmHWM is the peak since the sessions started
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def probe_openvino(req: dict, feed: dict) -> dict:
    """The same steps with OpenVINO's runtime (``provider: OpenVINO``): a one-node model compiled
    first (OpenVINO's own start-up), then the artifact; imported in the child, before the first reading."""
    import tempfile

    import numpy as np
    import openvino as ov

    before = _status_kb()
    reset = _reset_peak()
    core = ov.Core()
    with tempfile.NamedTemporaryFile(suffix=".onnx") as f:
        f.write(base64.b64decode(_IDENTITY_MODEL))
        f.flush()
        runtime = core.compile_model(f.name, req["ov_device"], req["ov_config"])
        runtime.create_infer_request().infer({"x": np.zeros(1, np.float32)})
    after_runtime = _status_kb()
    compiled = core.compile_model(req["model"], req["ov_device"], req["ov_config"])
    request = compiled.create_infer_request()
    created = _status_kb()
    for _ in range(max(1, req["runs"])):
        request.infer(feed)
    return {"before": before, "runtime": after_runtime, "session": created, "after": _status_kb(), "peak_reset": reset}


def probe(req: dict) -> dict:
    import numpy as np
    import onnxruntime as ort

    with np.load(req["feed"]) as data:
        feed = {k: data[k] for k in data.files}
    if req["provider"] == "OpenVINO":
        return probe_openvino(req, feed)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = req["threads"]
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    opts.enable_cpu_mem_arena = req["arena"]
    opts.graph_optimization_level = {
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[req["level"]]
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if req["spinning"] else "0")
    providers = [(req["provider"], req["provider_options"])]
    before = _status_kb()
    reset = _reset_peak()
    # a one-node session first: what onnxruntime itself costs (environment, thread pool, kernel
    # registry), whatever the model
    runtime = ort.InferenceSession(base64.b64decode(_IDENTITY_MODEL), sess_options=opts, providers=providers)
    runtime.run(None, {"x": np.zeros(1, np.float32)})
    after_runtime = _status_kb()
    sess = ort.InferenceSession(req["model"], sess_options=opts, providers=providers)
    created = _status_kb()
    for _ in range(max(1, req["runs"])):
        sess.run(None, feed)
    return {"before": before, "runtime": after_runtime, "session": created, "after": _status_kb(), "peak_reset": reset}


def _answer(out: dict) -> None:
    os.write(1, (json.dumps(out) + "\n").encode())


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:400] if text else ''}"


def serve() -> None:
    import numpy  # noqa: F401  (imported once, shared by every forked child)
    import onnxruntime  # noqa: F401

    _answer({"ready": True})
    for line in sys.stdin:
        if not line.strip():
            continue
        pid = os.fork()
        if pid == 0:
            try:
                out = probe(json.loads(line))
            except BaseException as exc:  # the child reports everything, then leaves
                out = {"error": _describe(exc)}
            _answer(out)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        if not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
            _answer({"error": f"the probe process died (wait status {status}); the model may crash onnxruntime"})


def once() -> None:
    try:
        out = probe(json.load(sys.stdin))
    except Exception as exc:
        out = {"error": _describe(exc)}
    _answer(out)


if __name__ == "__main__":
    once() if "--once" in sys.argv or not hasattr(os, "fork") else serve()
