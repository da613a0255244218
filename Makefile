# The two commands of the README:
#   make run    install (first time) and open the app on the models shipped in models/
#   make test   install (first time, with test tools and a virtual display) and run the tests
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint install install-dev system-deps bench models

run: install
	$(BIN)/bonefrac

test: install-dev system-deps
	$(BIN)/python -m pytest

lint: install-dev
	$(BIN)/ruff check .

bench: install-dev
	$(BIN)/python bench/run.py

# Rebuild the shipped model from ../shared/data/xray with its recipe (training/recipes/shipped.toml:
# stages of at most 150 min on this project's 2-core CPU), stage after stage in runs/recipe/<stage>,
# then publish over the shipped models/. Stopped, it resumes where it was; without --all, one call
# runs one stage. `bonefrac-train recipe --status` shows how far it has come.
models: install-dev
	$(BIN)/bonefrac-train recipe --all --runs-dir runs/recipe --models-dir models

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -c "import tkinter" 2>/dev/null || $(MAKE) system-deps
	$(PYTHON) -c "import ensurepip, venv" 2>/dev/null || $(MAKE) system-deps
	test -x $(BIN)/pip || (rm -rf $(VENV) && $(PYTHON) -m venv $(VENV))
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

# Tk for the window, Xvfb so the GUI tests run where there is no screen, dicom3tools' dciodvfy
# so the tests validate the DICOM results we write. Needs root (apt).
system-deps:
	@missing=""; \
	command -v Xvfb >/dev/null || missing="$$missing xvfb xauth"; \
	command -v dciodvfy >/dev/null || missing="$$missing dicom3tools"; \
	$(PYTHON) -c "import tkinter" 2>/dev/null || missing="$$missing python3-tk"; \
	$(PYTHON) -c "import ensurepip, venv" 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
		else echo "please install:$$missing (e.g. sudo apt-get install$$missing)"; exit 1; fi; \
	fi
