# The two commands of the README: `make run` and `make test`. Each creates .venv and installs
# what it needs on first use (packaging/install_env.py does the work):
#   make run     the app and its runtime libraries (Parquet support included), CPU PyTorch
#   make test    the same plus the test tools (the `dev` extra)
# Options (on the command line or in the environment):
#   TORCH=cuda             the CUDA build of the same PyTorch release (NVIDIA GPU and driver
#                          needed; checked after installing). Not on macOS, where the normal
#                          build already uses Apple's GPU.
#   TORCH_INDEX_URL=URL    where the CPU build comes from (default: PyTorch's CPU index on
#                          Linux and Windows, the normal index on macOS; empty: pip's own index)
#   TORCH_CUDA_INDEX_URL=URL   where the CUDA build comes from (default: PyTorch's cu130 index)
#   PYTHON=python3.11      the interpreter the environment is made from (3.10 or newer)
#   VENV=path              where the environment lives (default .venv)

ifeq ($(OS),Windows_NT)
PYTHON ?= python
BIN = $(VENV)/Scripts
EXE = .exe
else
PYTHON ?= python3
BIN = $(VENV)/bin
EXE =
endif
VENV ?= .venv
TORCH ?= cpu
PY = $(BIN)/python$(EXE)
# Separate stamps: running the app never installs the test tools.
RUN_STAMP = $(VENV)/.installed-run-$(TORCH)
TEST_STAMP = $(VENV)/.installed-test-$(TORCH)
SETUP_INPUTS = pyproject.toml setup.py constraints.txt packaging/install_env.py

.PHONY: run test pytest test-core-without-qt lint-imports install install-test clean screenshots

install: $(RUN_STAMP)
install-test: $(TEST_STAMP)

$(RUN_STAMP): $(SETUP_INPUTS)
	$(PYTHON) packaging/install_env.py $(VENV) --torch $(TORCH) --extras parquet
	touch $@

$(TEST_STAMP): $(SETUP_INPUTS)
	$(PYTHON) packaging/install_env.py $(VENV) --torch $(TORCH) --extras dev,parquet
	touch $@

run: $(RUN_STAMP)
	$(PY) -m dpsom_gui --demo

# Every step runs even when an earlier one fails; the summary names the failed steps and the
# exit status is non-zero if any failed.
test: $(TEST_STAMP)
	@failed=""; \
	$(MAKE) --no-print-directory pytest || failed="$$failed pytest"; \
	$(MAKE) --no-print-directory lint-imports || failed="$$failed lint-imports"; \
	$(MAKE) --no-print-directory test-core-without-qt || failed="$$failed test-core-without-qt"; \
	if [ -n "$$failed" ]; then echo "make test: FAILED:$$failed"; exit 1; fi; \
	echo "make test: every step passed"

# --durations lists the slowest tests, so one that creeps towards the timeout shows early.
pytest: $(TEST_STAMP)
	$(PY) -m pytest -q --durations=25

lint-imports: $(TEST_STAMP)
	$(BIN)/lint-imports$(EXE)

# The engine must work where Qt is not installed: run its tests with Qt imports blocked
# (the long quality tests already ran above; they import no Qt either).
test-core-without-qt: $(TEST_STAMP)
	PYTHONPATH=tests $(PY) -m pytest -q -p no:pytest-qt -p block_qt -m "not slow" tests/core tests/cli

screenshots: $(TEST_STAMP)
	xvfb-run -a -s "-screen 0 1280x1024x24" $(PY) docs/make_screenshots.py

clean:
	rm -rf $(VENV) build dist *.egg-info
