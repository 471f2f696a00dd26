# The two commands of the README: `make run` and `make test`. Each creates .venv and installs
# what is missing on first use. On a CUDA workstation use `make run TORCH=cuda` (pip then
# brings the CUDA build of PyTorch instead of the CPU build pinned in constraints-cpu.txt).

PYTHON ?= python3
VENV ?= .venv
TORCH ?= cpu
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(TORCH)
CONSTRAINTS := $(if $(filter cpu,$(TORCH)),-c constraints-cpu.txt,)

.PHONY: run test test-core-without-qt lint-imports install clean screenshots

install: $(STAMP)

$(STAMP): pyproject.toml constraints-cpu.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(CONSTRAINTS) -e ".[dev]"
ifeq ($(TORCH),cpu)
	@# Guard: a resolver change must never pull gigabytes of CUDA wheels onto a CPU machine.
	$(PY) -c "import torch, sys; sys.exit('CUDA torch installed on a CPU set-up' if torch.version.cuda else 0)"
endif
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/dpsom-studio --demo

test: $(STAMP)
	$(PY) -m pytest -q
	$(MAKE) --no-print-directory lint-imports test-core-without-qt

lint-imports: $(STAMP)
	$(VENV)/bin/lint-imports

# The engine must work where Qt is not installed: run its tests with Qt imports blocked
# (the long quality tests already ran above; they import no Qt either).
test-core-without-qt: $(STAMP)
	PYTHONPATH=tests $(PY) -m pytest -q -p no:pytest-qt -p block_qt -m "not slow" tests/core tests/cli

screenshots: $(STAMP)
	xvfb-run -a -s "-screen 0 1280x1024x24" $(PY) docs/make_screenshots.py

clean:
	rm -rf $(VENV) build dist *.egg-info
