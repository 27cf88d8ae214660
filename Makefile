# The course's commands. `make book` and `make test` each do all the set-up they need on a
# fresh machine: they create .venv, install the project into it, and do nothing again
# while pyproject.toml is unchanged.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help setup book test lint lab validate exercises grade clean

help:
	@echo "make book       build the HTML book into _build/html (executes every chapter)"
	@echo "make test       lint, unit tests, notebooks (nbval), exercises, grading, book build"
	@echo "make lab        open the exercises in JupyterLab (options: LAB_ARGS=\"--port 8899\")"
	@echo "make validate NB=exercises/<assignment>/<notebook>.ipynb"
	@echo "                run a notebook's visible tests as the grader would, say what fails"
	@echo "make exercises  regenerate exercises/ from solutions/ with nbgrader"
	@echo "make grade      autograde every submission in submitted/<student>/<assignment>/"
	@echo "make clean      remove the built book, caches and grading output (keeps .venv)"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

setup: $(STAMP)

# TQDM_DISABLE keeps progress bars (notebook widgets) out of the book's static pages.
book: setup
	TQDM_DISABLE=1 $(BIN)/jupyter-book build -W -n --keep-going .

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# nbval re-executes every chapter and solution notebook (exercises hold unsolved stubs;
# tests/test_grading.py runs them through the autograder instead). tests/test_book.py
# builds the book with warnings as errors.
test: lint
	$(BIN)/pytest --nbval-lax --nbval-cell-timeout=600 tests chapters solutions

# JupyterLab refuses to run as root (Docker, cloud notebooks) unless told it may. The server
# runs from the repository root, where nbgrader's Validate button finds nbgrader_config.py;
# JUPYTER_PATH puts this environment's python3 kernel ahead of any other of that name.
LAB_ARGS ?=
LAB_AS_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)

lab: setup
	@echo "JupyterLab on exercises/: open the URL with the token that it prints below."
	JUPYTER_PATH="$(CURDIR)/$(VENV)/share/jupyter$${JUPYTER_PATH:+:$$JUPYTER_PATH}" \
	  $(BIN)/jupyter lab $(LAB_AS_ROOT) $(LAB_ARGS) exercises

validate: setup
	@test -n "$(NB)" || { echo "usage: make validate NB=exercises/<assignment>/<notebook>.ipynb" >&2; exit 2; }
	$(BIN)/python -m grading.validate "$(NB)"

exercises: setup
	$(BIN)/python -m grading release

grade: setup
	$(BIN)/python -m grading grade

clean:
	rm -rf _build .cache autograded feedback gradebook.db grades.csv
