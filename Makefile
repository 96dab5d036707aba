# Two commands for a newcomer: `make demo` and `make test`. Both create .venv and install on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# torch/torchvision first, pinned: these builds are known to import together (see constraints.txt for the rest).
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
DEMO_OUT ?= demo-output
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 FIFTYONE_DO_NOT_TRACK=true FIFTYONE_DATABASE_VALIDATION=false

.PHONY: install demo test bench mutate gpu-check clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[all,test]'
	@touch $@

install: $(STAMP)

demo: $(STAMP)
	rm -rf $(DEMO_OUT)
	$(OFFLINE) $(BIN)/dataigm demo --out $(DEMO_OUT)

# One test process per core, at most 4 (pytest-xdist; each file stays in one process, so its fixtures build once).
TEST_JOBS ?= $(shell n=$$(nproc); echo $$(( n > 4 ? 4 : n )))
test: $(STAMP)
	$(OFFLINE) $(BIN)/python -m pytest -q -n $(TEST_JOBS) --dist loadfile

# Mutation testing of the modules that decide contents and numbers ([tool.mutmut] in pyproject.toml); not part
# of `make test`. Resumable: a rerun checks only mutants whose function changed. Score per module at the end.
# MUTANTS="dataigm.evaluation.metrics*" (mutmut name globs) reruns just those mutants.
MUTANTS ?=
mutate: $(STAMP)
	$(OFFLINE) $(BIN)/mutmut run --max-children $$(nproc) $(foreach m,$(MUTANTS),'$(m)') || true
	$(BIN)/mutmut results --all true | $(BIN)/python tools/mutation_score.py

bench: $(STAMP)
	@for b in benchmarks/[!_]*.py; do echo "== $$b"; $(BIN)/python $$b | tail -n 3; done

# The GPU acceptance check (one GPU, no network, < 8 minutes): PASS/FAIL per check, JSON summary last. See docs/build.md.
gpu-check: $(STAMP)
	$(OFFLINE) $(BIN)/python tools/gpu_check.py

clean:
	rm -rf $(DEMO_OUT) .pytest_cache build dist *.egg-info mutants
