"""The PDF handout: the whole book printed by Debian's Chromium, read back with poppler-utils.

The handout is printed from the session's book (fixture ``book``, conftest.py) as ``make pdf``
prints it, and read with ``pdftotext``, ``pdfinfo`` and ``pdfimages``: every page of the book
starts a new sheet with its title, the bibliography lists every work, every line of the
chapters' code is there whole (not cut at the margin), the equations are typeset (no TeX left)
with their numbers, and every figure is on one sheet only. Page 1 of chapter 5 is rendered with
``pdftoppm`` into ``_build/screenshots/pdf/``. The decks print one slide a page.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import unicodedata
from bisect import bisect_right
from collections import defaultdict
from itertools import accumulate
from pathlib import Path

import nbformat
import pytest
from bs4 import BeautifulSoup

from slides import REVEALJS, BuildError, browser, decks, handout

pytestmark = [pytest.mark.book, pytest.mark.browser]

REPO = Path(__file__).resolve().parents[1]
SCREENSHOTS = REPO / "_build" / "screenshots" / "pdf"
CHAPTERS = sorted(path.stem for path in (REPO / "chapters").glob("*.ipynb"))
POPPLER = ("pdftotext", "pdfinfo", "pdfimages", "pdftoppm")
#: The handout's length in A4 pages: the 13 pages of the book, 5 of them chapters with figures.
PAGES = range(60, 160)
#: What a page shows where MathJax did not typeset: TeX's delimiters and commands.
RAW_TEX = ("\\(", "\\[", "$$", "\\frac", "\\sum", "\\mathrm", "\\begin")
#: Tags with which a code cell's source does not appear in the book.
SOURCE_REMOVED = {"remove-cell", "remove-input", "remove_cell", "remove_input"}


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: apt-get install poppler-utils (make browser as root)")
    return path


def _run(*command: str) -> str:
    result = subprocess.run([_tool(command[0]), *command[1:]], capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(command)}: {result.stderr}"
    return result.stdout


def _flat(text: str) -> str:
    """Text without ligatures or whitespace: what survives line wrapping and fonts."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


@pytest.fixture(scope="module")
def pdf(book: Path) -> Path:
    """The handout of the session's book, as ``make pdf`` prints it."""
    if browser.missing():
        pytest.skip(f"the handout needs {browser.missing()}")
    try:
        return handout.print_book(book=book)
    except BuildError as error:
        pytest.fail(str(error))


@pytest.fixture(scope="module")
def pages(pdf: Path) -> list[str]:
    """The text of each page of the handout."""
    return _run("pdftotext", "-enc", "UTF-8", str(pdf), "-").split("\f")[:-1]


def _title(book: Path, page: str) -> str:
    heading = BeautifulSoup((book / page).read_text(encoding="utf-8"), "html.parser").h1
    return heading.get_text().replace("#", "").strip()


def test_page_count_is_in_range(pdf: Path, pages: list[str]) -> None:
    info = _run("pdfinfo", str(pdf))
    count = int(re.search(r"^Pages:\s+(\d+)", info, re.M)[1])
    assert count == len(pages)
    assert count in PAGES, f"{count} pages, expected {PAGES.start} to {PAGES.stop - 1}"


def test_every_page_of_the_book_starts_a_sheet_with_its_title(book: Path, pages: list[str]) -> None:
    order = handout.reading_order(book)
    for name in ("intro.html", *(f"chapters/{c}.html" for c in CHAPTERS), "bibliography.html"):
        assert name in order, f"{name} is not in the book's reading order {order}"
    tops = [_flat(page)[:200] for page in pages]
    for name in order:
        title = _flat(_title(book, name))
        assert any(top.startswith(title) for top in tops), f"no sheet starts with {name}'s title"


def _bibliography_lists(book: Path) -> list[list[str]]:
    """The works of each list of the bibliography page, in the page's order: the start of
    each entry's text, as ``_flat`` leaves it."""
    page = BeautifulSoup((book / "bibliography.html").read_text(encoding="utf-8"), "html.parser")
    lists: dict[int, list[str]] = {}
    for entry in page.select("div.citation"):
        lists.setdefault(id(entry.parent), []).append(_flat(entry.p.get_text())[:60])
    return list(lists.values())


def test_the_bibliography_lists_every_work(book: Path, pages: list[str]) -> None:
    """The bibliography's sheets, found by its entries (from the sheet that starts with the
    page's title to the next page's), hold every work of every list, in the page's order."""
    title_page = "bibliography.html"
    lists = _bibliography_lists(book)
    works = [work for listing in lists for work in listing]
    assert len(works) >= 7 and all(lists), f"the bibliography page's lists: {lists}"
    sheets = [_flat(page) for page in pages]
    first = "".join(sheets).find(works[0])
    assert first >= 0, f"no sheet of the handout holds the bibliography's first work {works[0]}"
    # Back from the sheet of the first work to the one that starts with the page's title, on to
    # the sheet that starts the next page of the book.
    start = bisect_right(list(accumulate(map(len, sheets), initial=0)), first) - 1
    title = _flat(_title(book, title_page))
    while start > 0 and not sheets[start].startswith(title):
        start -= 1
    assert sheets[start].startswith(title), f"{works[0]} is on no sheet of the bibliography"
    order = handout.reading_order(book)
    following = tuple(_flat(_title(book, page)) for page in order[order.index(title_page) + 1 :])
    end = next((i for i in range(start + 1, len(sheets)) if sheets[i].startswith(following)), None)
    text, position, missing = "".join(sheets[start:end]), 0, []
    for work in works:
        found = text.find(work, position)
        if found < 0:
            missing.append(work)
        else:
            position = found + len(work)
    assert not missing, f"the bibliography of the handout lacks, or misorders, {missing}"


def test_code_lines_are_whole_and_equations_typeset(pdf: Path, pages: list[str]) -> None:
    # -raw: as drawn; pdftotext's layout would join a line wrapped after "-" as a hyphenated word.
    text = _flat(_run("pdftotext", "-raw", "-enc", "UTF-8", str(pdf), "-"))
    for chapter in CHAPTERS:
        notebook = nbformat.read(REPO / "chapters" / f"{chapter}.ipynb", as_version=4)
        lines = [
            line
            for cell in notebook.cells
            if cell.cell_type == "code" and not SOURCE_REMOVED & set(cell.metadata.get("tags", []))
            for line in cell.source.splitlines()
            if line.strip()
        ]
        cut = [line for line in lines if _flat(line) not in text]
        assert not cut, f"{chapter}: code lines not whole in the handout: {cut[:5]}"
    raw = [token for token in RAW_TEX if token in "".join(pages)]
    assert not raw, f"TeX left untypeset in the handout: {raw}"
    chapter_5 = next(i for i, page in enumerate(pages) if _flat(page).startswith("5.Integrated"))
    assert "(5)" in pages[chapter_5], "eq. 5 and its number are not on chapter 5's first sheet"


def test_every_figure_is_on_one_sheet(pdf: Path) -> None:
    """pdfimages lists each image drawn on each sheet: a figure split across two sheets would
    be drawn on both."""
    sheets: dict[str, set[int]] = defaultdict(set)
    for row in _run("pdfimages", "-list", str(pdf)).splitlines()[2:]:
        page, _, kind, *_, object_id = row.split()[:11]
        if kind == "image":
            sheets[object_id].add(int(page))
    document = BeautifulSoup((pdf.parent / "book.html").read_text(encoding="utf-8"), "html.parser")
    figures = len(document.select(".cell_output img"))
    assert len(sheets) >= figures, f"{len(sheets)} images in the PDF, {figures} figures in the book"
    split = {image: on for image, on in sheets.items() if len(on) > 1}
    assert not split, f"images drawn on more than one sheet: {split}"


def test_chapter_5_renders_as_an_image(pages: list[str], pdf: Path) -> None:
    number = next(i for i, page in enumerate(pages) if _flat(page).startswith("5.Integrated")) + 1
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    prefix = SCREENSHOTS / "chapter5"
    _run("pdftoppm", "-png", "-r", "80", "-f", str(number), "-l", str(number), "-singlefile",
         str(pdf), str(prefix))  # fmt: skip
    assert prefix.with_suffix(".png").stat().st_size > 20_000


def test_each_deck_prints_a_slide_a_page(book: Path) -> None:
    if not (REVEALJS / "dist" / "reveal.js").is_file():
        pytest.skip(f"reveal.js is missing in {REVEALJS} (make revealjs)")
    built = decks.build(book=book)
    printed = handout.print_decks()
    assert [p.name for p in printed] == [f"slides-{deck.stem}.pdf" for deck in built]
    for deck, path in zip(built, printed, strict=True):
        soup = BeautifulSoup(deck.read_text(encoding="utf-8"), "html.parser")
        slides = [s for s in soup.select(".slides section") if not s.find("section")]
        info = _run("pdfinfo", str(path))
        assert int(re.search(r"^Pages:\s+(\d+)", info, re.M)[1]) == len(slides), deck.name
