"""Sphinx extension of the course book: MathJax from a local copy, so equations display offline.

``make book`` unpacks MathJax (pinned in the Makefile) from npm into ``.mathjax/mathjax/``.
When that copy is there, this extension adds it to the book's static files and points Sphinx's
``mathjax_path`` at it; the built book then needs no network to typeset its equations. Without
it (no Node.js/npm on the machine) the book loads MathJax from Sphinx's default CDN. Either
way the build log says in one line which MathJax the book uses.
"""

from __future__ import annotations

from pathlib import Path

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.util import logging

LOGGER = logging.getLogger(__name__)

#: The folder ``make book`` unpacks MathJax into, relative to the book's source folder; its
#: ``mathjax/`` sub-folder becomes ``_static/mathjax/`` of the built book.
LOCAL_FOLDER = ".mathjax"
#: MathJax 3's combined TeX and MathML input with HTML output: Sphinx's default bundle.
BUNDLE = "mathjax/tex-mml-chtml.js"


def local_copy(srcdir: str | Path) -> Path | None:
    """The folder that holds the local copy, or ``None`` if there is none."""
    folder = Path(srcdir) / LOCAL_FOLDER
    return folder if (folder / BUNDLE).is_file() else None


def _version(folder: Path) -> str:
    stamps = sorted(path.name for path in (folder / "mathjax").glob(".version-*"))
    return stamps[-1].removeprefix(".version-") if stamps else "(unknown version)"


def _use_local_copy(app: Sphinx, config: Config) -> None:
    folder = local_copy(app.srcdir)
    if folder is None:
        LOGGER.info(
            "MathJax: no local copy in %s/ (make book fetches it with npm): "
            "equations will need the network (%s)",
            LOCAL_FOLDER,
            config.mathjax_path,
        )
        return
    # Added here, not in _config.yml: jupyter-book puts every .js file of the static folders
    # named there on each page, and MathJax loads its many components itself. The folder is
    # hidden, so _config.yml's ".*" pattern keeps it out of the book's sources.
    config.html_static_path = [*config.html_static_path, str(folder)]
    config.mathjax_path = BUNDLE  # relative to _static/, Sphinx's rule for mathjax_path
    LOGGER.info(
        "MathJax %s: local copy from %s/ (equations display offline)",
        _version(folder),
        LOCAL_FOLDER,
    )


def setup(app: Sphinx) -> dict[str, bool]:
    app.connect("config-inited", _use_local_copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
