# plait: `make demo` serves the example Flow, `make test` runs the whole suite.
# Both set everything up from nothing (Python 3.11, pip, make).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test demo bench proto lint interop clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

test: venv browser
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

# headless Chromium renders Swagger UI in tests/test_swagger_ui.py: install it when missing and root
.PHONY: browser
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
		echo "chromium is missing: the Swagger UI browser test will be skipped"

demo: venv
	$(BIN)/python examples/demo.py

bench: venv wrk
	$(BIN)/python benchmarks/run.py

# wrk is the neutral HTTP load of the HTTP hot-path benchmark: install it when missing and root
.PHONY: wrk
wrk:
	@command -v wrk >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; } || \
		echo "wrk is missing: the HTTP hot-path benchmark (section L) will be skipped"

proto: venv
	$(BIN)/python plait/proto/generate.py

interop: venv
	bash interop/run.sh

lint: venv
	$(BIN)/ruff check plait tests benchmarks examples interop

clean:
	rm -rf $(VENV) build *.egg-info
