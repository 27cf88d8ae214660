"""Sphinx extension of the course book: equation numbers that match the lecture's.

Without it, Sphinx numbers the labelled equations of the whole book in one sequence, so the
lecture's eq. 5 (integrated gradients) showed as (10), while the text and the library's
docstrings say "eq. 5". With it, the equations that :data:`LECTURE_EQUATIONS` names carry
the lecture's numbers, (1) to (5), and every other labelled
equation of chapter c is (c.1), (c.2), ... in page order. References ({eq}`label`) show
the same numbers, because Sphinx takes both from the numbers this extension sets.
"""

from __future__ import annotations

import re

from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment

#: The lecture's equations: the label of each in its chapter -> the lecture's number.
LECTURE_EQUATIONS = {
    "eq-linear": 1,  # chapter 1: the linear classifier
    "eq-bce": 2,  # chapter 1: binary cross-entropy
    "eq-input-opt": 3,  # chapter 3: gradient ascent on the input
    "eq-class-model": 4,  # chapter 4: the class model (Simonyan et al. 2013)
    "eq-ig": 5,  # chapter 5: integrated gradients (Sundararajan et al. 2017)
}
#: A chapter's page name, e.g. ``chapters/05_integrated_gradients``, and its number.
CHAPTER = re.compile(r"^chapters/(\d+)_")


def _renumber(app: Sphinx, env: BuildEnvironment) -> list[str]:
    """After Sphinx numbered the book's figures and equations: the chapters' equations
    renumbered; returns those chapters, so that they are written again."""
    renumbered = []
    for docname, numbers in env.toc_fignumbers.items():
        chapter = CHAPTER.match(docname)
        equations = numbers.get("displaymath")
        if chapter is None or not equations:
            continue
        further = 0
        for node_id in sorted(equations, key=equations.get):  # Sphinx's order: page order
            label = node_id.removeprefix("equation-")
            if label in LECTURE_EQUATIONS:
                equations[node_id] = (LECTURE_EQUATIONS[label],)
            else:
                further += 1
                equations[node_id] = (int(chapter.group(1)), further)
        renumbered.append(docname)
    return renumbered


def setup(app: Sphinx) -> dict:
    # After the toctree collector's handler (priority 500), which assigns Sphinx's numbers.
    app.connect("env-get-updated", _renumber, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
