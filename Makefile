# The course's commands. `make book` and `make test` each do all the set-up they need on a
# fresh machine: they create .venv, install the project into it, and do nothing again
# while pyproject.toml is unchanged.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help setup book test lint lab exercises grade grade-slurm train-slurm clean

help:
	@echo "make book       build the HTML book into _build/html (executes every chapter)"
	@echo "make test       lint, unit tests, notebooks (nbval), exercises, grading, book build"
	@echo "make lab        open the exercises in JupyterLab"
	@echo "make exercises  regenerate exercises/ from solutions/ with nbgrader"
	@echo "make grade      autograde every submission in submitted/<student>/<assignment>/ (JOBS=N)"
	@echo "make grade-slurm  the same grading as a Slurm job array (slurm/config.toml)"
	@echo "make train-slurm  train the course models as a Slurm job (slurm/config.toml)"
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

lab: setup
	$(BIN)/jupyter lab exercises

exercises: setup
	$(BIN)/python -m grading release

# JOBS hand-ins are graded at once (default: every core); see `python -m grading grade --help`
# for the per-hand-in limits (time per cell and notebook, memory, CPU time).
JOBS ?= $(shell nproc 2>/dev/null || echo 1)
grade: setup
	$(BIN)/python -m grading grade --jobs $(JOBS)

# Slurm jobs; partition, account and resources are set in slurm/config.toml.
grade-slurm: setup
	$(BIN)/python -m grading grade --slurm

train-slurm: setup
	$(BIN)/python -m grading.slurm train

clean:
	rm -rf _build .cache autograded feedback gradebook.db grades.csv
