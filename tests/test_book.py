"""The course book: it builds without a warning, and the built pages are what students should see.

One ``jupyter-book build --all -W -n --keep-going`` of the repository (the session fixture
``book`` of conftest.py, shared with test_browser.py) executes every chapter; the tests then
read the HTML in ``_build/html``. Execution results are cached in
``_build/.jupyter_cache``, so a rebuild re-runs only the notebooks whose code changed.
"""

from __future__ import annotations

import json
import re
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.book

REPO = Path(__file__).resolve().parents[1]
HTML = REPO / "_build" / "html"

CHAPTER = "chapters/01_linear_classifiers"
EXERCISE = "exercises/01_linear_classifiers/01_linear_classifiers"
#: Repositories that are not the course's; jupyter-book and sphinx-thebe default to them.
FOREIGN_REPOSITORIES = ("executablebooks", "binder-examples")
#: Output areas of executed cells, as myst-nb marks them.
OUTPUT_CLASS = "cell_output"
#: myst-nb's classes for an exception and for stderr in a cell's output.
ERROR_CLASSES = ("traceback", "stderr")


class Page(HTMLParser):
    """What the tests need from one HTML page: its text and what its cells' outputs hold."""

    def __init__(self, path: Path) -> None:
        super().__init__(convert_charrefs=True)
        self.html = path.read_text(encoding="utf-8")
        self.text_parts: list[str] = []
        self.classes: list[str] = []  # every class of every element, in order
        self.links: list[str] = []  # href of every <a>
        self.output_images: list[str] = []  # src of every <img> inside a cell output
        self.outputs = 0  # number of cell output areas
        self._skip = 0  # depth inside <script>/<style>
        self._divs: list[bool] = []  # for each open <div>: does it start a cell output?
        self.feed(self.html)
        self.close()
        self.text = unescape("".join(self.text_parts))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        classes = attributes.get("class", "").split()
        self.classes.extend(classes)
        if tag in ("script", "style"):
            self._skip += 1
        elif tag == "a" and attributes.get("href"):
            self.links.append(attributes["href"])
        elif tag == "div":
            is_output = OUTPUT_CLASS in classes
            self.outputs += is_output
            self._divs.append(is_output)
        elif tag == "img" and any(self._divs):
            self.output_images.append(attributes.get("src", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1
        elif tag == "div" and self._divs:
            self._divs.pop()

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.text_parts.append(data)


def page(docname: str) -> Page:
    path = HTML / f"{docname}.html"
    assert path.is_file(), f"the book has no page {path.relative_to(REPO)}"
    return Page(path)


def tagged_sources(notebook: Path, tag: str) -> list[str]:
    """Sources of the code cells of ``notebook`` that carry ``tag``."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return [
        "".join(cell["source"])
        for cell in cells
        if cell["cell_type"] == "code" and tag in cell.get("metadata", {}).get("tags", [])
    ]


def test_intro_page_presents_the_course(book: Path) -> None:
    intro = page("intro")
    assert "Explaining Neural Networks" in intro.text
    assert "linear classifier" in intro.text.lower()
    # The book opens on the course overview.
    assert "intro.html" in (book / "index.html").read_text(encoding="utf-8")


def test_chapter_1_is_executed_and_shows_its_figures(book: Path) -> None:
    chapter = page(CHAPTER)
    assert chapter.outputs > 0, "chapter 1 shows no cell outputs: was it executed?"
    figures = [src for src in chapter.output_images if src.endswith(".png")]
    assert figures, "chapter 1 shows no PNG figure in its cell outputs"
    for src in figures:
        assert (book / CHAPTER).parent.joinpath(src).resolve().is_file(), f"{src} is missing"


def test_chapter_1_shows_no_errors(book: Path) -> None:
    chapter = page(CHAPTER)
    assert "Traceback" not in chapter.text
    shown = [name for name in ERROR_CLASSES if name in chapter.classes]
    assert not shown, f"chapter 1 shows {shown} output"


def test_pages_embed_no_widgets(book: Path) -> None:
    pages = sorted(book.rglob("*.html"))
    assert pages, "the build wrote no page"
    with_widgets = [
        str(path.relative_to(book))
        for path in pages
        if "application/vnd.jupyter.widget" in path.read_text(encoding="utf-8")
    ]
    assert not with_widgets, f"pages embed Jupyter widgets (progress bars?): {with_widgets}"


def test_remove_cell_cells_are_not_published(book: Path) -> None:
    notebook = (REPO / CHAPTER).with_suffix(".ipynb")
    removed = tagged_sources(notebook, "remove-cell")
    assert removed, f"{notebook.name} has no cell tagged remove-cell to check"
    chapter = page(CHAPTER)
    for source in removed:
        first_line = source.strip().splitlines()[0].strip()
        assert first_line not in chapter.text, f"a remove-cell cell is published: {first_line!r}"


def test_exercise_page_is_shown_but_not_executed(book: Path) -> None:
    exercise = page(EXERCISE)
    assert "NotImplementedError" in exercise.text, "the exercise's stubs are not shown"
    assert exercise.outputs == 0, "the exercise page shows cell outputs: it must not be run"
    assert "Traceback" not in exercise.text


def test_solutions_are_not_published(book: Path) -> None:
    published = [path.relative_to(book) for path in book.rglob("*")]
    assert published, "the build wrote nothing"
    leaked = [path for path in published if "solution" in str(path).lower()]
    assert not leaked, f"solutions are published: {leaked}"


#: First authors of the six works the lecture cites: the bibliography's first list.
LECTURE_REFERENCES = ("Frank", "Krizhevsky", "Simonyan", "Sundararajan", "Deng", "Russakovsky")
#: First authors of the works the book adds: its second list, further reading.
FURTHER_READING = (
    "LeCun",
    "Erhan",
    "Kokhlikyan",
    "Olah",
    "Mordvintsev",
    "Adebayo",
    "Smilkov",
    "Sturmfels",
    "Petsiuk",
    "Wang",
    "Hedström",
)


def _first_authors(html: str, surnames: tuple[str, ...]) -> list[str]:
    """For each bibliography entry in ``html``, which of ``surnames`` its text names first."""
    entries = re.findall(r'<div class="citation"[^>]*>(.*?)</div>', html, flags=re.DOTALL)
    found = []
    for entry in entries:
        text = unescape(re.sub(r"<[^>]+>", " ", entry))
        named = [(text.find(name), name) for name in surnames if name in text]
        found.append(min(named)[1] if named else text.strip()[:60])
    return found


def test_bibliography_lists_the_lectures_six_then_further_reading(book: Path) -> None:
    html = (book / "bibliography.html").read_text(encoding="utf-8")
    lecture = html.index('id="the-lecture-s-references"')
    further = html.index('id="further-reading"')
    assert lecture < further, "the lecture's references come first"
    parts = {LECTURE_REFERENCES: html[lecture:further], FURTHER_READING: html[further:]}
    for surnames, part in parts.items():
        assert sorted(_first_authors(part, surnames)) == sorted(surnames), surnames


def test_equations_carry_the_lectures_numbers(book: Path) -> None:
    """The lecture's eq. 1 to 5 show as (1) to (5), in the equation and in every reference to
    it; a chapter's further equations as (c.1), (c.2), ... (_ext/lecture_equations.py)."""
    expected = {
        "01_linear_classifiers": ["1", "2"],
        "02_deepfake_detection": ["2.1", "2.2", "2.3", "2.4"],
        "03_input_optimization": ["3"],
        "04_saliency_maps": ["4", "4.1"],
        "05_integrated_gradients": ["5", "5.1", "5.2"],
        "06_sanity_checks": ["6.1", "6.2"],
    }
    for name, numbers in expected.items():
        html = (book / "chapters" / f"{name}.html").read_text(encoding="utf-8")
        assert re.findall(r'<span class="eqno">\(([0-9.]+)\)', html) == numbers, name
    chapter_5 = (book / "chapters" / "05_integrated_gradients.html").read_text(encoding="utf-8")
    assert '<a class="reference internal" href="#equation-eq-ig">(5)</a>' in chapter_5


def test_no_launch_buttons_or_foreign_repository_links(book: Path) -> None:
    """The buttons stay off until _config.yml names the course's repository (then adapt this)."""
    pages = sorted(book.rglob("*.html"))
    assert len(pages) >= 4, f"too few pages built: {pages}"
    for path in pages:
        parsed = Page(path)
        name = path.relative_to(book)
        assert "launch-buttons" not in parsed.html, f"{name} has launch buttons"
        for repository in FOREIGN_REPOSITORIES:
            assert repository not in parsed.html, f"{name} refers to {repository}"
        github = [href for href in parsed.links if "github.com" in href]
        assert not github, f"{name} links to {github}"


def test_launch_buttons_switch_on_with_a_repository_url(tmp_path: Path, book_app) -> None:
    """Setting ``repository.url`` is all it takes to switch the launch buttons on.

    No second build: jupyter-book's Sphinx application for the book with that setting (its
    extensions' hooks, _ext/launch_switch.py's among them, have run), and the launch buttons
    that sphinx-book-theme's own page handler then puts on chapter 1's page.
    """
    config = yaml.safe_load((REPO / "_config.yml").read_text(encoding="utf-8"))
    config["repository"]["url"] = "https://github.com/example-org/example-course"
    config["execute"]["execute_notebooks"] = "off"  # only the page's header matters here
    # Unexecuted chapters glue nothing: their {glue:text} roles find no value to paste.
    config["sphinx"]["config"]["suppress_warnings"] = ["mystnb.glue"]
    # jupyter-book resolves local extension folders against the config file's folder.
    extensions = config["sphinx"]["local_extensions"]
    for name, folder in extensions.items():
        extensions[name] = str(REPO / folder)
    path = tmp_path / "_config.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    with book_app(REPO, path, tmp_path / "_build") as (app, log):
        assert "launch buttons off" not in log.getvalue(), log.getvalue()[-4000:]
        app.env.find_files(app.config, app.builder)
        assert CHAPTER in app.env.found_docs
        (handler,) = [
            listener.handler
            for listener in app.events.listeners["html-page-context"]
            if listener.handler.__name__ == "add_launch_buttons"
        ]
        # The keys of a page's context that the handler reads, as Sphinx's HTML builder and
        # sphinx-book-theme's prep_header_buttons set them for the chapter's page.
        context = {
            **app.config.html_context,
            "pagename": CHAPTER,
            "sourcename": f"{CHAPTER}.ipynb.txt",
            "page_source_suffix": ".ipynb",
            "header_buttons": [],
        }
        handler(app, CHAPTER, "page.html", context, None)
    links = [
        button["url"]
        for group in context["header_buttons"]
        for button in group.get("buttons", [])
        if "url" in button
    ]
    notebook = f"{CHAPTER}.ipynb"
    assert (
        f"https://mybinder.org/v2/gh/example-org/example-course/main?urlpath=lab/tree/{notebook}"
        in links
    ), links
    assert (
        f"https://colab.research.google.com/github/example-org/example-course/blob/main/{notebook}"
        in links
    ), links
