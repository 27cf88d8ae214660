"""Sphinx extension of the course book: a chapter cell's time limit is the course's.

Every limit of the course is set once, in ``nbgrader_config.py``: ``Execute.timeout`` is what
one cell may take when a course notebook runs as a whole (the book's build, ``make validate``).
This extension hands it to MyST-NB (``nb_execution_timeout``) before the build starts.
"""

from __future__ import annotations

from sphinx.application import Sphinx
from sphinx.config import Config
from traitlets.config import PyFileConfigLoader


def cell_timeout(folder: str) -> int:
    """``Execute.timeout`` of the ``nbgrader_config.py`` in ``folder``."""
    return int(PyFileConfigLoader("nbgrader_config.py", path=folder).load_config().Execute.timeout)


def _set_timeout(app: Sphinx, config: Config) -> None:
    config.nb_execution_timeout = cell_timeout(str(app.srcdir))


def setup(app: Sphinx) -> dict[str, bool]:
    app.connect("config-inited", _set_timeout)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
