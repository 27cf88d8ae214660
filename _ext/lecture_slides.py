"""Sphinx extension of the course book: what the lecture's slides need from the book.

``make slides`` (the package ``slides``) cuts one reveal.js deck per chapter out of the chapter
pages that this build writes, so that the decks show what the book shows: the same figures,
equation numbers, citations and glued numbers, with nothing executed again. For that,

- every block of a chapter page (a heading, paragraph, equation, list, code cell, ...) carries
  the class ``nb-cell-<i>``, the index of the notebook cell it came from, by which the deck
  builder follows the cells' ``slideshow`` metadata;
- every chapter links its deck below its title, and the directive ``{lecture-decks}`` lists
  the decks of all chapters (the intro page).

The decks lie beside the book's HTML folder: ``_build/slides/<chapter>.html``.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from docutils import nodes
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

#: The class of a block that came from notebook cell i.
CELL_CLASS = "nb-cell-{}"
#: myst-nb gives the nodes of a notebook's cell i the source lines from (i + 1) * 10000 on.
LINES_PER_CELL = 10_000
#: The pages that have a deck: the chapters.
CHAPTER = re.compile(r"^chapters/[^/]+$")
#: The decks' folder, a sibling of the book's HTML folder.
DECKS = "slides"


def deck_uri(outdir: str | Path, from_docname: str, chapter: str) -> str:
    """The link from page ``from_docname`` to the deck of ``chapter``."""
    deck = posixpath.join(DECKS, f"{posixpath.basename(chapter)}.html")
    page_folder = posixpath.join(Path(outdir).name, posixpath.dirname(from_docname))
    return posixpath.relpath(deck, page_folder)


def cell_index(node: nodes.Element) -> int | None:
    """The notebook cell a block came from, or ``None`` where it does not say."""
    if "cell_index" in node.attributes:  # myst-nb's code cells
        return int(node["cell_index"])
    line = next((n.line for n in node.findall(nodes.Element) if n.line), None)
    return line // LINES_PER_CELL - 1 if line and line >= LINES_PER_CELL else None


def _blocks(parent: nodes.Element):
    """The blocks of a page in order: sections are walked through, not marked."""
    for child in parent.children:
        if isinstance(child, nodes.section):
            yield from _blocks(child)
        elif isinstance(child, nodes.Element):
            yield child


def _mark_cells_and_link_deck(app: Sphinx, doctree: nodes.document) -> None:
    docname = app.env.docname
    if not CHAPTER.match(docname) or Path(app.env.doc2path(docname)).suffix != ".ipynb":
        return
    for block in _blocks(doctree):
        index = cell_index(block)
        if index is not None:
            block["classes"].append(CELL_CLASS.format(index))
    title = next(doctree.findall(nodes.title), None)
    if title is not None:
        link = nodes.paragraph("", "The lecture's slides of this chapter: ", classes=["deck-link"])
        link += nodes.reference("", "reveal.js deck", refuri=deck_uri(app.outdir, docname, docname))
        title.parent.insert(title.parent.index(title) + 1, link)


class LectureDecks(SphinxDirective):
    """A list of the chapters, each with the link to its deck."""

    def run(self) -> list[nodes.Node]:
        chapters = sorted(name for name in self.env.found_docs if CHAPTER.match(name))
        items = nodes.bullet_list(classes=["lecture-decks"])
        for chapter in chapters:
            page = addnodes.pending_xref(
                "", nodes.inline("", chapter), refdomain="std", reftype="doc",
                reftarget=f"/{chapter}", refexplicit=False, refdoc=self.env.docname,
            )  # fmt: skip
            deck = nodes.reference(
                "", "slides", refuri=deck_uri(self.env.app.outdir, self.env.docname, chapter)
            )
            items += nodes.list_item("", nodes.paragraph("", "", page, nodes.Text(": "), deck))
        return [items]


def setup(app: Sphinx) -> dict:
    app.connect("doctree-read", _mark_cells_and_link_deck)
    app.add_directive("lecture-decks", LectureDecks)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
