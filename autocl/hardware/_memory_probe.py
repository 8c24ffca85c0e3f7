"""Run as a script in a fresh process by :mod:`autocl.hardware._memory`; imports nothing of autocl.

Reads a JSON request on stdin (model path, feed .npz path, session settings, runs), creates the
inference session, runs it, and prints the process's resident memory at each step as JSON.
"""

import base64
import json
import sys

# y = Identity(x), float[1], opset 13: built once with onnx.helper, kept as bytes so the probe
# imports nothing but numpy and onnxruntime
_IDENTITY_MODEL = "CAg6OgoQCgF4EgF5IghJZGVudGl0eRIEdGlueVoPCgF4EgoKCAgBEgQKAggBYg8KAXkSCgoICAESBAoCCAFCBAoAEA0="


def _status_kb() -> dict:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":", 1)
                out[key] = int(value.split()[0])
    return out


def main() -> None:
    req = json.load(sys.stdin)
    import numpy as np
    import onnxruntime as ort

    with np.load(req["feed"]) as data:
        feed = {k: data[k] for k in data.files}
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
    before = _status_kb()["VmRSS"]
    try:  # forget the import peak, so VmHWM is the peak since the sessions started
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        reset = True
    except OSError:
        reset = False
    # a one-node session first: what onnxruntime itself costs (environment, thread pool, kernel
    # registry), whatever the model
    runtime = ort.InferenceSession(base64.b64decode(_IDENTITY_MODEL), sess_options=opts, providers=providers)
    runtime.run(None, {"x": np.zeros(1, np.float32)})
    runtime_kb = _status_kb()["VmRSS"]
    sess = ort.InferenceSession(req["model"], sess_options=opts, providers=providers)
    created = _status_kb()["VmRSS"]
    for _ in range(max(1, req["runs"])):
        sess.run(None, feed)
    after = _status_kb()
    json.dump({"before_kb": before, "runtime_kb": runtime_kb, "session_kb": created, "after_kb": after["VmRSS"],
               "peak_kb": after["VmHWM"], "peak_reset": reset}, sys.stdout)


if __name__ == "__main__":
    main()
