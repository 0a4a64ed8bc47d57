# From a fresh clone, the README's two commands:
#   make demo   - install into .venv and run a short CPU benchmark of cgan and acgan
#   make test   - install into .venv (with test extras) and run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ganbench-installed

.PHONY: demo test install

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/ganbench run --variants cgan,acgan --dataset fashion-mnist

# The tests never download: find Fashion-MNIST first (or download it here, once). One pytest-xdist
# worker per core (TEST_WORKERS=0: none); tests/conftest.py gives each worker its share of threads.
# --durations: the 25 slowest, so a CI log shows where the 20-minute budget goes.
TEST_WORKERS ?= auto
test: $(STAMP)
	$(BIN)/ganbench data --dataset fashion-mnist
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup --durations=25
