"""Sphinx extension of the course book: equation numbers that match the lecture's.

Without it, Sphinx numbers the labelled equations of the whole book in one sequence, so the
lecture's eq. 5 (integrated gradients) showed as (10), while the text and the library's
docstrings say "eq. 5". With it, the equations that ``lecture_equations`` (in
``_config.yml``) names carry the lecture's numbers, (1) to (5), and every other labelled
equation of chapter c is (c.1), (c.2), ... in page order. References ({eq}`label`) show
the same numbers, because Sphinx takes both from the numbers this extension sets.
"""

from __future__ import annotations

import re

from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment

#: A chapter's page name, e.g. ``chapters/05_integrated_gradients``, and its number.
CHAPTER = re.compile(r"^chapters/(\d+)_")


def _renumber(app: Sphinx, env: BuildEnvironment) -> None:
    lecture: dict[str, int] = app.config.lecture_equations
    for docname, numbers in env.toc_fignumbers.items():
        chapter = CHAPTER.match(docname)
        equations = numbers.get("displaymath")
        if chapter is None or not equations:
            continue
        further = 0
        for node_id in sorted(equations, key=equations.get):  # Sphinx's order: page order
            label = node_id.removeprefix("equation-")
            if label in lecture:
                equations[node_id] = (lecture[label],)
            else:
                further += 1
                equations[node_id] = (int(chapter.group(1)), further)


def setup(app: Sphinx) -> dict:
    # label (without "equation-") -> the lecture's equation number
    app.add_config_value("lecture_equations", {}, "env", types=[dict])
    app.connect("env-updated", _renumber)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
