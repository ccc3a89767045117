# The two commands of the README: `make demo` (the main job) and `make test` (the tests).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo test lint clean

# setup.py compiles the scoring kernel in place (optional: without a C compiler the harness
# scores with numpy alone); its sources are prerequisites so that an edit rebuilds it
$(BIN)/sarbench: pyproject.toml constraints.txt setup.py harness/scoring/_ndvi_window.c harness/scoring/_ndvi_window.h
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,baselines,cluster]' -c constraints.txt
	touch $@

install: $(BIN)/sarbench

demo: install
	$(BIN)/sarbench demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
