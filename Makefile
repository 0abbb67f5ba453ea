# Every target installs what it needs: a fresh clone needs only `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

export PREFECT_HOME ?= $(CURDIR)/.prefect
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 120
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export DO_NOT_TRACK ?= 1

.PHONY: install demo test bench lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/dataactions demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m benchmarks

lint: $(STAMP)
	$(BIN)/ruff check dataactions flows tasks tests benchmarks scripts

clean:
	rm -rf $(VENV) .prefect data/output .pytest_cache

# Where users live: the analyst notebook, and the Prefect UI with scheduled runs (README: "Analyst notebook",
# "Scheduling runs and reading the report in the Prefect UI").
.PHONY: notebook ui
UI_PORT ?= 4200

notebook: $(STAMP)
	@ls data/output/results/run_id=*/part-*.parquet >/dev/null 2>&1 || $(BIN)/dataactions demo
	$(BIN)/jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.root_dir=$(CURDIR) $(if $(filter 0,$(shell id -u)),--allow-root) \
	    notebooks/explore_results.ipynb

ui: $(STAMP)
	$(BIN)/python scripts/local_stack.py --port $(UI_PORT)
