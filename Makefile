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

# $(call ensure_tool,PACKAGE,COMMAND,WHAT IS SKIPPED): apt-get install PACKAGE when COMMAND is
# missing and we are root; otherwise say what goes without it
define ensure_tool
	@command -v $(2) >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(1) >/dev/null; } || \
		echo "$(2) is missing: $(3)"
endef

# headless Chromium renders Swagger UI in tests/test_swagger_ui.py
.PHONY: browser
browser:
	$(call ensure_tool,chromium,chromium,the Swagger UI browser test will be skipped)

demo: venv
	$(BIN)/python examples/demo.py

bench: venv wrk
	$(BIN)/python benchmarks/run.py

# wrk is the neutral HTTP load of the HTTP hot-path benchmark
.PHONY: wrk
wrk:
	$(call ensure_tool,wrk,wrk,the HTTP hot-path benchmark (section L) will be skipped)

proto: venv
	$(BIN)/python plait/proto/generate.py

interop: venv
	bash interop/run.sh

lint: venv
	$(BIN)/ruff check plait tests benchmarks examples interop

clean:
	rm -rf $(VENV) build *.egg-info
