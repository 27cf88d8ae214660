"""The lecture's slides, cut from a small hand-made book: how cells become slides and notes.

``slides.decks`` reads a chapter's page as the book build wrote it (blocks marked with their
notebook cell by ``_ext/lecture_slides.py``) and the ``slideshow`` metadata of the build's copy
of the notebook. These tests build decks from a small book written here, in the shape the
build writes; tests/test_decks.py checks the decks of the real book in Chromium.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat
import pytest
from bs4 import BeautifulSoup
from docutils import nodes
from PIL import Image

from slides import BuildError, decks
from slides.__main__ import main

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("lecture_slides", REPO / "_ext/lecture_slides.py")
lecture_slides = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lecture_slides)

CHAPTER_PAGE = """<!DOCTYPE html><html><body><nav>not a slide</nav>
<article class="bd-article">
<section id="a-title">
<h1 class="nb-cell-0">1. A title<a class="headerlink" href="#a-title">#</a></h1>
<p class="deck-link">The slides: <a href="../../slides/01_a.html">deck</a></p>
<p class="nb-cell-0">Narrative with \\(x\\), after
<span>[<a class="reference internal" href="../bibliography.html#id2">LBBH98</a>]</span>.</p>
<ul class="nb-cell-0"><li>The score
<a class="reference internal" href="#equation-eq-linear">(1)</a></li></ul>
<div class="cell docutils container nb-cell-1"><div class="cell_input">import torch</div>
<div class="cell_output docutils container">
<div class="output stream highlight-myst-ansi notranslate"><pre>MNIST: 5,000 digits</pre></div>
<img alt="The weights" src="../_images/weights.png"></div></div>
<section id="the-equation">
<h2 class="nb-cell-2">The equation<a class="headerlink" href="#the-equation">#</a></h2>
<p class="nb-cell-2">Said aloud.</p>
<div class="math notranslate nohighlight nb-cell-2" id="equation-eq-linear">
<span class="eqno">(1)<a class="headerlink" href="#equation-eq-linear">#</a></span>
\\[o = a^T x + b\\]</div>
<p class="nb-cell-3">Only in the book.</p>
<p class="nb-cell-4">For the speaker:
<a class="reference internal" href="02_b.html#x">chapter 2</a>,
<a class="reference internal" href="../api.html#lib.plot">lib.plot</a>,
<a class="reference external" href="https://pytorch.org">PyTorch</a>.</p>
<p class="nb-cell-5">Below.</p>
<div class="math notranslate nohighlight nb-cell-5" id="equation-eq-b">
<span class="eqno">(1.1)</span>\\[y = 1\\]</div>
<section id="summary"><h2 class="nb-cell-5">Summary</h2>
<ul class="nb-cell-5"><li>A heading after something shown starts a slide.</li></ul>
<div class="cell docutils container nb-cell-6"><div class="cell_output docutils container">
<img alt="Square" src="../_images/square.png"><img alt="Wide" src="../_images/wide.png">
</div></div></section>
</section></section></article></body></html>
"""
BIBLIOGRAPHY = """<html><body><article><div class="citation" id="id2" role="doc-biblioentry">
<span class="label"><span class="fn-bracket">[</span><a role="doc-backlink"
href="chapters/01_a.html#id1">LBBH98</a><span class="fn-bracket">]</span></span>
<p>Yann LeCun and others. Gradient-based learning. 1998.</p></div></article></body></html>"""
#: The chapter's cells: their slide types, as cell metadata (None: no metadata).
SLIDE_TYPES = ["slide", "fragment", "slide", "skip", "notes", "subslide", "subslide"]


@pytest.fixture
def small_book(tmp_path: Path) -> dict[str, Path]:
    """A built book of two chapters, its notebooks, and reveal.js and MathJax stand-ins."""
    book, notebooks, revealjs = tmp_path / "html", tmp_path / "notebooks", tmp_path / "reveal"
    for path, text in {
        book / "index.html": '<meta http-equiv="refresh" content="0; url=intro.html">',
        book / "chapters" / "01_a.html": CHAPTER_PAGE,
        book / "chapters" / "02_b.html": '<article><h1 class="nb-cell-0">2. B</h1></article>',
        book / "bibliography.html": BIBLIOGRAPHY,
        book / "_static" / "mathjax" / "tex-mml-chtml.js": "/* MathJax */",
        book / "_images" / "README": "the figures",
        revealjs / "dist" / "reveal.js": "/* reveal.js */",
        revealjs / "plugin" / "notes" / "notes.js": "/* its speaker notes */",
    }.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for name, size in {"weights": (20, 10), "square": (10, 10), "wide": (30, 10)}.items():
        Image.new("RGB", size).save(book / "_images" / f"{name}.png")
    cells = [nbformat.v4.new_markdown_cell(f"cell {i}") for i in range(len(SLIDE_TYPES))]
    for cell, kind in zip(cells, SLIDE_TYPES, strict=True):
        cell.metadata["slideshow"] = {"slide_type": kind}
    (notebooks / "chapters").mkdir(parents=True)
    nbformat.write(nbformat.v4.new_notebook(cells=cells), notebooks / "chapters" / "01_a.ipynb")
    second = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 2. B")])
    nbformat.write(second, notebooks / "chapters" / "02_b.ipynb")
    return {"book": book, "notebooks": notebooks, "revealjs": revealjs, "out": tmp_path / "slides"}


def _deck(paths: dict[str, Path]) -> BeautifulSoup:
    written = decks.build(**paths)
    assert written == [paths["out"] / "01_a.html", paths["out"] / "02_b.html"]
    return BeautifulSoup(written[0].read_text(encoding="utf-8"), "html.parser")


def test_cells_become_slides_by_their_slide_type(small_book: dict[str, Path]) -> None:
    deck = _deck(small_book)
    assert deck.title.get_text() == "1. A title"
    top = deck.select(".slides > section")
    assert [section.get("id") for section in top] == [None, None, None, "references"]
    first, stack = top[0], top[1]
    assert first.h1.get_text() == "1. A title"
    assert "import torch" not in str(deck), "code is never shown"
    assert "not a slide" not in str(deck) and "deck-link" not in str(deck)
    # Cell 1 is a fragment: its figure appears at the next step, its printout in the notes.
    assert first.select_one(".fragment img")["src"] == "_images/weights.png"
    assert "MNIST: 5,000 digits" in first.select_one("aside.notes").get_text()
    # Cells 2-5: a slide (with cell 4 in its notes, cell 3 skipped) and a subslide below it.
    slides = stack.find_all("section", recursive=False)
    assert len(slides) == 2
    assert slides[0].h2.get_text() == "The equation"
    assert slides[0].select_one("div.math .eqno").get_text() == "(1)"
    assert "Only in the book" not in str(deck)
    notes = slides[0].select_one("aside.notes")
    assert "Said aloud." in notes.get_text() and "For the speaker" in notes.get_text()
    assert slides[1].select_one("h2.continued").get_text() == "The equation"
    assert slides[1].select_one("#equation-eq-b") is not None
    assert "Below." in slides[1].select_one("aside.notes").get_text()
    # Cell 5 goes on: its second heading starts a new slide.
    assert top[2].h2.get_text() == "Summary" and top[2].li is not None
    # Cell 6, a subslide below it, has two figures that do not both read on one slide, a square
    # and one three times as wide as high: each goes on a slide of its own, under the title.
    below = top[2].find_all("section", recursive=False)
    assert [slide.h2.get_text() for slide in below] == ["Summary"] * 3
    shown = [[image["alt"] for image in slide.find_all("img")] for slide in below]
    assert shown == [[], ["Square"], ["Wide"]]
    assert not deck.select(".figures")


def test_paragraphs_go_to_the_notes_and_the_rest_shows(small_book: dict[str, Path]) -> None:
    first = _deck(small_book).select_one(".slides > section")
    shown = first.find_all(recursive=False)
    assert [element.name for element in shown] == ["h1", "ul", "div", "aside"]
    assert "Narrative with" in first.select_one("aside.notes").get_text()


def test_links_images_and_citations_point_into_the_decks_folder(
    small_book: dict[str, Path],
) -> None:
    deck = _deck(small_book)
    hrefs = [a["href"] for a in deck.find_all("a", href=True)]
    assert hrefs == [
        "#/references",
        "02_b.html",
        "../html/api.html#lib.plot",
        "https://pytorch.org",
    ]
    assert not deck.select(".headerlink"), "the book's # links are left out"
    assert " ".join(deck.select_one("ul").get_text().split()) == "The score (1)"
    references = deck.select_one("#references")
    assert references.get_text(" ", strip=True) == (
        "References [LBBH98] Yann LeCun and others. Gradient-based learning. 1998."
    )
    out = small_book["out"]
    assert Image.open(out / "_images" / "weights.png").size == (20, 10)
    for static in ("reveal.js/dist/reveal.js", "mathjax/tex-mml-chtml.js", "deck.js", "deck.css"):
        assert (out / "_static" / static).is_file(), static
    for script in deck.find_all("script", src=True):
        assert (out / script["src"]).is_file(), script["src"]


@pytest.mark.parametrize(
    ("sizes", "kind"),
    [
        ([(460, 420), (460, 420)], "side by side"),  # two squares: each half the slide wide
        ([(971, 189), (971, 189)], "stacked"),  # two strips: each the slide's width
        ([(971, 376), (971, 376)], "apart"),  # two curves: together half as high as they read
        ([(459, 420), (971, 376)], "apart"),  # a heat map and a curve, as in chapter 3
        ([(971, 662)], "side by side"),  # one figure is never apart from itself
    ],
)
def test_a_cells_figures_go_together_where_each_reads(
    sizes: list[tuple[int, int]], kind: str
) -> None:
    assert decks.layout(sizes) == kind


def test_a_list_after_a_list_goes_on_a_slide_below() -> None:
    page = BeautifulSoup(
        "<h1>T</h1><p>Why:</p><ul><li>a</li></ul><p>How:</p><ol><li>b</li></ol><p>c</p>"
        "<h2>S</h2><ul><li>d</li></ul><p>More:</p><ul><li>e</li></ul>",
        "html.parser",
    )
    cut = decks.parts("slide", page.find_all(recursive=False))
    assert [(kind, [block.name for block in part]) for kind, part in cut] == [
        ("slide", ["h1", "p", "ul"]),
        ("subslide", ["p", "ol", "p"]),
        ("slide", ["h2", "ul"]),
        ("subslide", ["p", "ul"]),
    ]
    shown = [(kind, [str(b) for b in part if decks.split(b)[0]], []) for kind, part in cut]
    stacks = decks.arrange(shown)
    titles = [[slide.shown[0] for slide in stack] for stack in stacks]
    assert titles == [
        ["<h1>T</h1>", '<h2 class="continued">T</h2>'],
        ["<h2>S</h2>", '<h2 class="continued">S</h2>'],
    ]
    assert decks.parts("notes", page.find_all(recursive=False))[0][0] == "notes"


def test_arrange_stacks_subslides_and_starts_a_slide_if_needed() -> None:
    stacks = decks.arrange(
        [
            ("-", ["<h1>t</h1>"], ["<p>n</p>"]),
            ("subslide", ["<p>s</p>"], []),
            ("fragment", ["<p>f</p>", "<p>g</p>"], []),
            ("slide", [], []),
            ("notes", ["<div>eq</div>"], ["<p>m</p>"]),
            ("skip", ["<p>x</p>"], []),
        ]
    )
    assert [[slide.shown for slide in stack] for stack in stacks] == [
        [
            ["<h1>t</h1>"],
            [
                '<h2 class="continued">t</h2>',
                "<p>s</p>",
                '<div class="fragment"><p>f</p><p>g</p></div>',
            ],
        ],
        [[]],
    ]
    assert stacks[1][0].notes == ["<div>eq</div>", "<p>m</p>"]
    html = decks.render(stacks)
    assert html.startswith("<section><section><h1>t</h1><aside")
    assert '<section><h2 class="continued">t</h2><p>s</p>' in html
    assert html.endswith('<section><aside class="notes"><div>eq</div><p>m</p></aside></section>')


def test_an_unknown_slide_type_names_the_cell(small_book: dict[str, Path]) -> None:
    notebook_path = small_book["notebooks"] / "chapters" / "01_a.ipynb"
    notebook = nbformat.read(notebook_path, as_version=4)
    notebook.cells[2].metadata["slideshow"]["slide_type"] = "Slide"
    nbformat.write(notebook, notebook_path)
    with pytest.raises(BuildError, match=r"chapters/01_a.ipynb, cell 3: slide_type 'Slide'"):
        decks.build(**small_book)


def test_a_page_without_cell_marks_says_how_to_build_it(small_book: dict[str, Path]) -> None:
    page = small_book["book"] / "chapters" / "01_a.html"
    page.write_text(page.read_text().replace("nb-cell-", "cell-"), encoding="utf-8")
    with pytest.raises(BuildError, match="_ext/lecture_slides.py"):
        decks.build(**small_book)


def test_without_revealjs_the_build_says_what_is_missing(small_book: dict[str, Path]) -> None:
    (small_book["revealjs"] / "dist" / "reveal.js").unlink()
    with pytest.raises(BuildError, match="reveal.js is missing .* npm"):
        decks.build(**small_book)


def test_without_a_book_the_command_says_so_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    build = decks.build
    monkeypatch.setattr(decks, "build", lambda: build(book=tmp_path / "html"))
    assert main(["decks"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "run make book first" in error


def test_the_extension_reads_cells_from_myst_nbs_lines() -> None:
    paragraph = nodes.paragraph("", "", nodes.Text("x"))
    assert lecture_slides.cell_index(paragraph) is None
    paragraph.line = 3 * 10_000 + 7  # myst-nb: cell i's lines start at (i + 1) * 10000
    assert lecture_slides.cell_index(paragraph) == 2
    container = nodes.container(cell_index=4)
    assert lecture_slides.cell_index(container) == 4
    section = nodes.section("", nodes.title("", "t"), paragraph)
    page = nodes.Element("", nodes.target(), section)
    assert list(lecture_slides._blocks(page)) == [page[0], section[0], paragraph]


def test_the_extension_links_each_page_to_the_decks_beside_the_book() -> None:
    outdir = "/course/_build/html"
    assert lecture_slides.deck_uri(outdir, "chapters/05_ig", "chapters/05_ig") == (
        "../../slides/05_ig.html"
    )
    assert lecture_slides.deck_uri(outdir, "intro", "chapters/05_ig") == "../slides/05_ig.html"
