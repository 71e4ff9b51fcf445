# pdsim: every target sets up what it needs (a virtual environment in .venv) by itself.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: venv test test-all lint proto prometheus observe dashboards up-colocated up-disaggregated colocated disaggregated \
	compare phases clients clean

# Experiment knobs, forwarded only when set: the defaults live in ExperimentConfig (apps/experiment.py) and
# PhasesConfig, and `pdsim compare --help` shows them. ARGS passes any other flag through.
#   make compare RATES=0.5,1,2 MIX=chat PREFILL=1 DECODE=1 MODEL=small DTYPE=bfloat16 ARGS="--warmup 2"
flag = $(if $($(1)),$(2) $($(1)))
MODEL_ARGS = $(strip $(call flag,MODEL,--model) $(call flag,DTYPE,--dtype) $(call flag,DEVICE,--device))
EXPERIMENT_ARGS = $(strip $(MODEL_ARGS) $(call flag,MIX,--mix) $(call flag,RATE,--rate) $(call flag,WORKERS,--workers) \
	$(call flag,PREFILL,--prefill) $(call flag,DECODE,--decode) $(call flag,DURATION,--duration) \
	$(call flag,SEED,--seed) $(ARGS))

venv: $(STAMP)

# torch first and pinned: 2.13.0 is the CPU wheel on a CPU box, and the range in pyproject.toml then keeps it.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

test: $(STAMP) prometheus
	$(PY) -m pytest -q $(PYTEST_ARGS)

# Also the long tests (marked slow).
test-all: $(STAMP) prometheus
	$(PY) -m pytest -q -m "" $(PYTEST_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports
	$(PY) -m mypy pdsim prefill_node decode_node colocated_node router loadgen apps tests benchmarks

# Regenerate the protobuf stubs after editing proto/ (tests fail while they are stale).
proto: $(STAMP)
	$(PY) -m grpc_tools.protoc -Iproto --python_out=. --pyi_out=. --grpc_python_out=. proto/pdsim/rpc/pdsim.proto

# Prometheus from Debian's packages when missing (the metrics test is skipped without it, unless CI requires it).
prometheus:
	-@deploy/prometheus/install.sh

# Prometheus on 127.0.0.1:$(PROMETHEUS_PORT), scraping every cluster started on this machine; prints how to add Grafana.
PROMETHEUS_PORT ?= 9090
observe: $(STAMP)
	deploy/prometheus/install.sh
	$(VENV)/bin/pdsim observe --port $(PROMETHEUS_PORT)

# Regenerate deploy/grafana/dashboards/pdsim.json after editing apps/dashboard.py (tests fail while it is stale).
dashboards: $(STAMP)
	$(PY) -m apps.dashboard

up-colocated: $(STAMP)
	$(VENV)/bin/pdsim up --mode colocated --workers 2

up-disaggregated: $(STAMP)
	$(VENV)/bin/pdsim up --mode disaggregated --prefill 1 --decode 1

# One experiment each: the same workload and hardware, results in results/<arm>/.
colocated: $(STAMP)
	$(VENV)/bin/pdsim --log-level WARNING experiment --arm colocated $(EXPERIMENT_ARGS)

disaggregated: $(STAMP)
	$(VENV)/bin/pdsim --log-level WARNING experiment --arm disaggregated $(EXPERIMENT_ARGS)

# Both modes over the rate sweep; writes results/compare/report.md and its plots.
compare: $(STAMP)
	$(VENV)/bin/pdsim --log-level WARNING compare $(call flag,RATES,--rates) $(EXPERIMENT_ARGS)

# The prefill-vs-decode phase benchmark: results/phases/results.json and roofline.png.
# make phases MODEL=small DTYPE=bfloat16 DEVICE=cpu PHASES_ARGS="--batches 1,8,64 --contexts 256 --threads 2"
PHASES_ARGS ?=
phases: $(STAMP)
	$(VENV)/bin/pdsim --log-level WARNING phases $(MODEL_ARGS) $(PHASES_ARGS) $(ARGS)

# The client-compatibility harness (not part of make test): vllm bench serve, guidellm, aiperf and the openai SDK, each
# installed once into its own virtual environment under ~/.cache/pdsim/clients, against a cluster in each mode;
# writes results/clients/table.md and commands.md. make clients CLIENTS_ARGS="--tools aiperf,openai --count 20"
CLIENTS_ARGS ?= --model small --count 30 --rate 2
clients: $(STAMP)
	$(PY) -m apps.clients.harness $(CLIENTS_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
