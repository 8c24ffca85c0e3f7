#!/usr/bin/env bash
# The CUDA path of autocl, end to end, on a machine with an NVIDIA GPU and onnxruntime-gpu
# (`make gpu-install`; it is skipped where nvidia-smi finds no GPU):
#   1. the GPU, the CPU, and onnxruntime's providers;
#   2. `autocl profiles`: the cuda profile runs here;
#   3. `autocl layers --profile cuda`: every precision probed per layer on the CUDA provider
#      (fp16 must compute in float16, int8 must run an integer kernel; a refusal says why);
#   4. one study searched on two targets at once, the GPU and this machine's CPU, its front per
#      target, and the cross-target regret (`autocl compare-targets`);
#   5. the fastest GPU member within one point exported and re-measured on the GPU.
# Usage: benchmarks/cuda_run.sh [OUT_DIR]     (default benchmarks/results; writes cuda_run.log)
# Environment: PYTHON (default python3), TRIALS (default 16), TIMEOUT (default 5m).
set -uo pipefail
out=${1:-benchmarks/results}
py=${PYTHON:-python3}
trials=${TRIALS:-16}
gpu=${GPU_PROFILE:-hardware_profiles/cuda.yaml}   # another profile tries the script where there is no GPU
space=${SPACE:-search_spaces/gpu.yaml}   # fp16 for the GPU, int8 for the CPU
timeout=${TIMEOUT:-5m}
export AUTOCL_HOME=${AUTOCL_HOME:-$(mktemp -d /tmp/autocl-cuda-XXXX)}
if [ -n "${TEACHER:-}" ]; then mkdir -p "$AUTOCL_HOME/cache/teachers" && cp "$TEACHER" "$AUTOCL_HOME/cache/teachers/"; fi  # a teacher trained elsewhere
export PYTHONUNBUFFERED=1 COLUMNS=160
mkdir -p "$out"
db="sqlite:///$AUTOCL_HOME/cuda.db"
study=cuda-mnist
step() { echo; echo "\$ $*"; "$@"; echo "(exit $?)"; }
{
  echo "# autocl's CUDA path, $(date -u +%FT%TZ)"
  echo "command: benchmarks/cuda_run.sh (autocl ${AUTOCL_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)})"
  echo "GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1)"
  echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs), $(nproc) cores"
  $py -c "import onnxruntime as o, torch; print('onnxruntime', o.__version__, o.get_available_providers(), '| torch', torch.__version__)"
  step $py -m autocl profiles
  step $py -m autocl layers --workload mnist --profile "$gpu"
  step $py -m autocl search --workload mnist --space "$space" \
    --profile "$gpu" --profile hardware_profiles/cpu-local.yaml \
    --study "$study" --storage "$db" --trials "$trials" --timeout "$timeout" --max-drop 0.01
  step $py -m autocl front --study "$study" --storage "$db" --profile "$(basename "$gpu" .yaml)"
  step $py -m autocl front --study "$study" --storage "$db" --profile cpu-local
  step $py -m autocl compare-targets --study "$study" --storage "$db"
  step $py -m autocl export --study "$study" --storage "$db" --profile "$(basename "$gpu" .yaml)" --pick 'metric_drop<=0.01' \
    --out "$AUTOCL_HOME/export" --latency-tolerance 1
} 2>&1 | tee "$out/cuda_run.log"
