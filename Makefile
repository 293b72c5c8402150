# plait: `make demo` serves the example Flow, `make test` runs the whole suite.
# Both set everything up from nothing (Python 3.11, pip, make).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test demo bench proto lint clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

test: venv
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

demo: venv
	$(BIN)/python examples/demo.py

bench: venv
	$(BIN)/python benchmarks/run.py

proto: venv
	$(BIN)/python plait/proto/generate.py

clean:
	rm -rf $(VENV) build *.egg-info
