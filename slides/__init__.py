"""The lecture as an instructor gives it: slides and a PDF handout, cut from the built book.

``make book`` executes the chapters and writes the book's pages; from those pages and nothing
else (no cell runs again)

- ``python -m slides decks`` (``make slides``) writes one reveal.js deck per chapter to
  ``_build/slides/<chapter>.html`` (:mod:`slides.decks`), and
- ``python -m slides pdf`` (``make pdf``) prints the whole book, and each deck, with Debian's
  Chromium to ``_build/pdf/`` (:mod:`slides.handout`).

Both work offline: reveal.js and MathJax are local copies fetched with npm.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: What ``make book`` writes: the HTML book, and its copy of each notebook it read (whose cell
#: metadata arranges the decks; the cells' outputs are in the pages).
BUILD = REPO / "_build"
BOOK = BUILD / "html"
NOTEBOOKS = BUILD / "jupyter_execute"
#: Where the decks and PDFs go.
DECKS = BUILD / "slides"
PDF = BUILD / "pdf"
#: reveal.js, unpacked from npm by ``make slides`` (Makefile: revealjs).
REVEALJS = REPO / ".revealjs" / "reveal.js"


class BuildError(RuntimeError):
    """Something the decks or the handout need is missing; the message says what to do."""
