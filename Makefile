# The course's commands. `make book` and `make test` each do all the set-up they need on a
# fresh machine: they create .venv, install the project into it, and do nothing again
# while pyproject.toml is unchanged.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# torch's OpenMP threads wait for each other passively instead of spinning: on a machine that
# other jobs keep busy, spinning threads burn CPU time without progress (one epoch of chapter
# 2's generator beside other jobs: 510 s with spinning, 117 s passive; see
# benchmarks/threads_under_load.py). Kernels, book builds and graders inherit it; a value set
# outside wins.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: help setup mathjax browser course-models book check test lint lab validate exercises due grade \
	grade-slurm train-slurm \
	collect export feedback-zip clean

help:
	@echo "make book       build the HTML book into _build/html (executes every chapter)"
	@echo "make check      lint and the fast unit tests (no kernel, book, browser or cluster): after every edit"
	@echo "make test       everything: unit tests, notebooks (nbval), exercises, grading, book, browser, lab, Slurm"
	@echo "make course-models  train (or load from the course cache) the models the chapters share"
	@echo "make lab        open the exercises in JupyterLab (options: LAB_ARGS=\"--port 8899\")"
	@echo "make validate NB=exercises/<assignment>/<notebook>.ipynb"
	@echo "                run a notebook's visible tests as the grader would, say what fails"
	@echo "make exercises  regenerate exercises/ from solutions/ with nbgrader; time changed solutions"
	@echo "make slides     after make book: the lecture's slides, a reveal.js deck per chapter, in _build/slides"
	@echo "make pdf        after make book: the book (and each deck) as PDF in _build/pdf"
	@echo "make due ASSIGNMENT=<assignment> DUE=\"2025-01-31 23:59 Europe/Berlin\""
	@echo "                an assignment's due date in the gradebook (late hand-ins: nbgrader_config.py)"
	@echo "make grade      autograde every submission in submitted/<student>/<assignment>/ (JOBS=N)"
	@echo "make grade-slurm  the same grading as a Slurm job array (c.Slurm in nbgrader_config.py)"
	@echo "make train-slurm  train the course models as a Slurm job (SLURM_TRAIN=\"sbatch options\")"
	@echo "make collect ZIP=<download.zip> ASSIGNMENT=<name> LMS=moodle|canvas"
	@echo "                the learning platform's download of hand-ins into submitted/"
	@echo "make export LMS=moodle|canvas GRADEBOOK=<platform's grade sheet.csv>"
	@echo "                the gradebook's scores into the platform's sheet, for its import"
	@echo "make feedback-zip LMS=moodle|canvas  feedback/ as the platform's bulk upload"
	@echo "make clean      remove the built book, caches and grading output (keeps .venv)"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

setup: $(STAMP)

# MathJax, pinned, from npm into .mathjax/ (the book's extension _ext/local_mathjax.py serves
# it from the book's _static/ folder), so that equations display offline. Without npm the
# book still builds and loads MathJax from its CDN; the build log says so in one line.
MATHJAX_VERSION := 3.2.2
MATHJAX := .mathjax/mathjax/.version-$(MATHJAX_VERSION)
NPM ?= npm

$(MATHJAX):
	@mkdir -p .cache/npm
	@if command -v $(NPM) >/dev/null 2>&1 \
	  && $(NPM) pack --silent --pack-destination .cache/npm mathjax@$(MATHJAX_VERSION) >/dev/null; \
	then \
	  rm -rf .mathjax && mkdir -p .mathjax/mathjax && \
	  tar -xzf .cache/npm/mathjax-$(MATHJAX_VERSION).tgz -C .mathjax/mathjax \
	    --strip-components=2 package/es5 && \
	  touch $@ && echo "MathJax $(MATHJAX_VERSION) from npm in .mathjax/"; \
	else \
	  echo "npm (Node.js) missing or offline: the book's equations will need the network (MathJax CDN)"; \
	fi

mathjax: $(MATHJAX)

# reveal.js, pinned, from npm into .revealjs/ like MathJax (make book fetches both): `make slides`
# copies it (and MathJax) beside the decks, so that they present offline. Without npm (or
# offline) this fetches nothing, and `make slides` says in one line what is missing.
REVEALJS_VERSION := 5.2.1
REVEALJS := .revealjs/reveal.js/.version-$(REVEALJS_VERSION)

$(REVEALJS):
	@mkdir -p .cache/npm
	@if command -v $(NPM) >/dev/null 2>&1 \
	  && $(NPM) pack --silent --pack-destination .cache/npm reveal.js@$(REVEALJS_VERSION) >/dev/null 2>&1; \
	then \
	  rm -rf .revealjs && mkdir -p .revealjs/reveal.js && \
	  tar -xzf .cache/npm/reveal.js-$(REVEALJS_VERSION).tgz -C .revealjs/reveal.js \
	    --strip-components=1 package/LICENSE package/dist package/plugin/notes && \
	  touch $@ && echo "reveal.js $(REVEALJS_VERSION) from npm in .revealjs/"; \
	fi

revealjs: $(REVEALJS)

# The browser tests drive Debian's Chromium, and the handout's test reads the PDF with Debian's
# poppler-utils (pdftotext, pdfinfo, pdftoppm): both installed with apt where missing and we are
# root (CI); otherwise those tests skip and name what to install.
browser:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="chromium"; \
	command -v pdftotext >/dev/null 2>&1 || missing="$$missing poppler-utils"; \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian's $$missing for the browser and PDF tests (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends $$missing >/dev/null \
	  || echo "apt-get could not install $$missing: the browser and PDF tests will say what is missing"; \
	fi

# The models the chapters, exercises and grader share (chapter 2's generator, chapter 3's CNN),
# trained in a step of their own, with a progress bar, before any chapter runs: a chapter then
# only loads them and no cell trains for minutes under the book's or nbval's cell time limit.
course-models: setup
	$(BIN)/python -m lib course-models

# TQDM_DISABLE keeps progress bars (notebook widgets) out of the book's static pages. --all
# reads every page afresh (executed notebooks stay cached in _build/.jupyter_cache):
# sphinx-codeautolink links the names in code cells to the library's reference only in the
# pages it reads. reveal.js comes along, so that `make slides` needs no network afterwards.
book: setup mathjax revealjs course-models
	TQDM_DISABLE=1 $(BIN)/jupyter-book build --all -W -n --keep-going .

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The test suite in tiers (markers declared in pyproject.toml): `make check` runs the tests of
# none of the expensive kinds below, `make test` runs all of them.
EXPENSIVE := notebooks or grading or slurm or browser or lab or book or arithmetic

check: lint
	$(BIN)/pytest -m "not ($(EXPENSIVE))" --durations=15 tests

# nbval re-executes every chapter and solution notebook (exercises hold unsolved stubs;
# tests/test_grading.py runs them through the autograder instead). The chapters go first:
# their executed notebooks go into the book's execution cache (conftest.py), so that the book
# that tests/ build afterwards (make book, with warnings as errors) executes none again.
#
# Two arithmetics in one run: the course models that are not cached yet are computed on one
# thread, the chapters run on all cores, and every chapter's checks must hold for pictures
# and networks computed with the other's rounding (a fresh clone, as in CI, computes them all).
test: lint mathjax revealjs browser setup
	OMP_NUM_THREADS=1 $(BIN)/python -m lib course-models
	$(BIN)/pytest --nbval-lax --nbval-cell-timeout=600 --durations=25 chapters solutions tests

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

# Also runs each solution whose source changed since it was last timed, and keeps the CPU time
# of its slowest cell in solutions/<assignment>/timing.json: the grader's per-cell limit.
exercises: setup
	$(BIN)/python -m grading release

# An assignment's due date in the gradebook (created where missing): hand-ins whose
# timestamp.txt is later are late, and c.LateSubmissionPlugin in nbgrader_config.py says what
# that costs. DUE: a date, a time and a time zone, e.g. DUE="2025-01-31 23:59 Europe/Berlin".
due: setup
	@test -n "$(ASSIGNMENT)" -a -n "$(DUE)" || \
	  { echo 'usage: make due ASSIGNMENT=<assignment> DUE="2025-01-31 23:59 Europe/Berlin"' >&2; exit 2; }
	$(BIN)/python -m grading due "$(ASSIGNMENT)" "$(DUE)"

# JOBS hand-ins are graded at once (default: every core). The limits per hand-in (time per cell
# and notebook, memory, CPU time) are set in nbgrader_config.py; `python -m grading grade
# --help` shows them.
JOBS ?= $(shell nproc 2>/dev/null || echo 1)
grade: setup
	$(BIN)/python -m grading grade --jobs $(JOBS)

# The same grading as a Slurm job array; partition, account and resources: c.Slurm.* in
# nbgrader_config.py.
grade-slurm: setup
	$(BIN)/python -m grading grade --slurm

# The course models, trained on a Slurm node (slurm/train_course_models.sbatch); SLURM_TRAIN
# holds the options of your cluster, e.g. "--partition=gpu --account=xnn --gres=gpu:1".
SLURM_TRAIN ?= --gres=gpu:1
train-slurm: setup
	sbatch $(SLURM_TRAIN) slurm/train_course_models.sbatch

# The lecture's slides and the PDF handout, cut from the book that `make book` built: nothing
# executes again. A reveal.js deck per chapter in _build/slides/; the book, and each deck, as
# PDF in _build/pdf/, printed by Debian's Chromium (make browser installs it as root).
.PHONY: revealjs slides pdf
slides: setup revealjs
	$(BIN)/python -m slides decks

pdf: setup
	$(BIN)/python -m slides pdf

# Hand-ins from a learning platform and grades back to it (python -m lms; README, "Teaching
# with Moodle or Canvas"). LMS: moodle or canvas. ASSIGNMENT: the nbgrader assignment (export
# and feedback-zip: default, the only one collected). GRADEBOOK: the platform's grade sheet
# (Moodle's grading worksheet, Canvas's gradebook export); with collect, Moodle's worksheet gives
# the hand-ins' times (TIMEZONE=Europe/Berlin: the zone it was downloaded in). FORCE=1: replace
# hand-ins collected before. MISSING=0: write 0 for students without a hand-in (default:
# blank). SCALE=1: scale scores to the platform's maximum. COLUMN: Canvas's assignment column.
LMS_ARGS = --lms "$(LMS)" $(if $(ASSIGNMENT),--assignment "$(ASSIGNMENT)")
LMS_USAGE = { echo "usage: make $@ $(1)" >&2; exit 2; }

collect: setup
	@test -n "$(ZIP)" -a -n "$(ASSIGNMENT)" -a -n "$(LMS)" || \
	  $(call LMS_USAGE,ZIP=<download.zip> ASSIGNMENT=<name> LMS=moodle|canvas)
	$(BIN)/python -m lms collect $(LMS_ARGS) --zip "$(ZIP)" $(if $(GRADEBOOK),--sheet \
	  "$(GRADEBOOK)") $(if $(TIMEZONE),--timezone "$(TIMEZONE)") $(if $(FORCE),--force)

export: setup
	@test -n "$(LMS)" -a -n "$(GRADEBOOK)" || \
	  $(call LMS_USAGE,LMS=moodle|canvas GRADEBOOK=<platform's grade sheet.csv>)
	$(BIN)/python -m lms export $(LMS_ARGS) --sheet "$(GRADEBOOK)" $(if $(MISSING),--missing \
	  "$(MISSING)") $(if $(SCALE),--scale) $(if $(COLUMN),--column "$(COLUMN)")

feedback-zip: setup
	@test -n "$(LMS)" || $(call LMS_USAGE,LMS=moodle|canvas [ASSIGNMENT=<name>])
	$(BIN)/python -m lms feedback-zip $(LMS_ARGS)

clean:
	rm -rf _build .cache autograded feedback gradebook.db grades.csv upload
