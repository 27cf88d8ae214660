"""Shared fixtures: every unit test of ``lib`` that computes runs on each available device;
the book is built once per test session for the tests that read it, and tests of the book's
configuration alone get jupyter-book's Sphinx application without a build."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib
import pytest
import torch

from lib.device import DEVICE_ENV, available_devices

if TYPE_CHECKING:
    from sphinx.application import Sphinx

matplotlib.use("Agg")  # tests draw figures without a screen


@pytest.fixture(params=[kind for kind in available_devices() if kind != "mps"])
def device(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> torch.device:
    """Each device this machine has (cpu always, cuda where present), also set as
    ``XNN_DEVICE`` so that library code choosing its own device picks the same one."""
    monkeypatch.setenv(DEVICE_ENV, request.param)
    return torch.device(request.param)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Tests never read or write the course's real model cache. The course models (chapter 2's
    generator, chapter 3's CNN) are the exception: they are shared, keyed by all that changes
    them, and trained at most once, so tests (and the grader runs inside them) use the course
    cache that the chapters fill instead of training them again in every test."""
    course_cache = os.environ.get("XNN_COURSE_CACHE_DIR") or os.environ.get("XNN_CACHE_DIR")
    monkeypatch.setenv("XNN_COURSE_CACHE_DIR", course_cache or str(REPO / ".cache" / "models"))
    monkeypatch.setenv("XNN_CACHE_DIR", str(tmp_path_factory.mktemp("model-cache")))


REPO = Path(__file__).resolve().parents[1]
#: The README's command for the book: it builds the HTML with warnings as errors, every page
#: read afresh, each chapter executed or, after nbval ran it in the same run, taken from the
#: execution cache (conftest.py at the repository's root).
BOOK_COMMAND = ["make", "-C", str(REPO), "book"]


@pytest.fixture(scope="session")
def book() -> Path:
    """Build the book once per session (fresh HTML, cached execution); return its folder.

    Shared by tests/test_book.py (the pages' HTML) and tests/test_browser.py (the pages in
    Chromium), so that ``make test`` builds the book only once.
    """
    html = REPO / "_build" / "html"
    # Fresh HTML, so that no page of an earlier build can pass for one of this build.
    shutil.rmtree(html, ignore_errors=True)
    env = os.environ.copy()  # XNN_DATA_DIR, XNN_DEVICE, XNN_CACHE_DIR, ... pass through
    # A progress bar in an executed cell becomes a Jupyter widget, which the page could only
    # draw with JavaScript from a CDN (test_pages_embed_no_widgets): the book shows none.
    env["TQDM_DISABLE"] = "1"
    result = subprocess.run(
        BOOK_COMMAND, cwd=REPO, env=env, capture_output=True, text=True, check=False
    )
    output = (result.stdout + result.stderr)[-8000:]
    assert result.returncode == 0, f"{' '.join(BOOK_COMMAND)} failed:\n{output}"
    return html


@pytest.fixture(scope="session")
def mixed_class(tmp_path_factory: pytest.TempPathFactory):
    """The mixed class of tests/test_grading.py, graded once per session on this machine:
    tests/test_slurm.py compares its grading through Slurm with this one."""
    from test_grading import grade_mixed_class

    return grade_mixed_class(tmp_path_factory.mktemp("mixed-class"))


@contextmanager
def _book_app(source: Path, config: Path, out: Path) -> Iterator[tuple[Sphinx, io.StringIO]]:
    """jupyter-book's Sphinx application for the book in ``source`` with ``config``, and its
    log so far; set up as ``jupyter-book build`` sets it up (its configuration, every
    extension, their config-inited and builder-inited hooks), but it reads no page unless
    the test asks (``app.builder.read()``)."""
    from jupyter_book.config import get_final_config
    from sphinx.application import Sphinx
    from sphinx.util.docutils import docutils_namespace, patch_docutils

    # What the command line adds to _config.yml (jupyter_book/cli/main.py).
    cli = {"external_toc_path": str(source / "_toc.yml"), "latex_individualpages": False}
    sphinx_config, _ = get_final_config(user_yaml=config, cli_config=cli, sourcedir=source)
    log = io.StringIO()
    with patch_docutils(source), docutils_namespace(), warnings.catch_warnings():
        # Noise of the book's extensions when they run inside the test process: docutils' old
        # traverse() in sphinx-jupyterbook-latex, and sphinx-external-toc looking through
        # every object in memory (torch's among them).
        warnings.filterwarnings("ignore", category=PendingDeprecationWarning, module="sphinx_")
        warnings.filterwarnings("ignore", "`torch.distributed.reduce_op`", FutureWarning)
        app = Sphinx(
            srcdir=source,
            confdir=None,
            outdir=out / "html",
            doctreedir=out / ".doctrees",
            buildername="html",
            confoverrides=sphinx_config,
            status=log,
            warning=log,
            freshenv=True,
        )
        yield app, log


@pytest.fixture(scope="session")
def book_app() -> Callable[[Path, Path, Path], AbstractContextManager]:
    """``book_app(source, config, out)``: a context holding jupyter-book's Sphinx application
    and its log, for tests of what the book's configuration and extensions decide before a
    page is read, at a fraction of a build's cost."""
    return _book_app
