"""The lecture's decks as a class sees them: every slide of every chapter's deck, offline.

The decks are built from the session's book (fixture ``book``, conftest.py) as ``make slides``
builds them, and each is opened in Debian's Chromium, driven by Playwright, at 1280x720 with
every request outside the decks' folder blocked. On every slide the equations are typeset,
every image has loaded and nothing reaches beyond the slide; the lecture's equations (1)-(5)
are on slides of the chapters that hold them, with their numbers. A screenshot of the first
slide with each of them lands in ``_build/screenshots/slides/``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
from pathlib import Path

import nbformat
import pytest
from bs4 import BeautifulSoup

from slides import DECKS, REVEALJS, BuildError, browser, decks

pytestmark = [pytest.mark.book, pytest.mark.browser]

REPO = Path(__file__).resolve().parents[1]
SCREENSHOTS = REPO / "_build" / "screenshots" / "slides"
CHAPTERS = sorted(path.stem for path in (REPO / "chapters").glob("*.ipynb"))
_spec = importlib.util.spec_from_file_location("equations", REPO / "_ext/lecture_equations.py")
lecture_equations = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lecture_equations)
#: A labelled display equation in a chapter's markdown: $$ ... $$ (label).
LABELLED = re.compile(r"\$\$\s*\(([\w-]+)\)")
#: The slide size the decks are made for (slides/deck.js).
SLIDE = {"width": 1280, "height": 720}
#: Figures fill the room that a slide's text leaves (slides/deck.css): at least this high in
#: pixels, half the slide (or as high as the slide's width allows), so a class can read them.
MIN_FIGURE_HEIGHT = 360


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _missing(what: str) -> None:
    if _in_ci():
        pytest.fail(f"{what}; CI must not skip the decks' tests")
    pytest.skip(what)


def lecture_equations_of(chapter: str) -> dict[str, int]:
    """The lecture's equations that the chapter's notebook defines: label -> number."""
    notebook = nbformat.read(REPO / "chapters" / f"{chapter}.ipynb", as_version=4)
    labels = {
        label
        for cell in notebook.cells
        if cell.cell_type == "markdown"
        for label in LABELLED.findall(cell.source)
    }
    return {
        label: number
        for label, number in lecture_equations.LECTURE_EQUATIONS.items()
        if label in labels
    }


@pytest.fixture(scope="module")
def built(book: Path) -> list[Path]:
    """The decks of the session's book, as ``make slides`` builds them."""
    if not (REVEALJS / "dist" / "reveal.js").is_file():
        _missing(f"reveal.js is missing in {REVEALJS} (make revealjs fetches it with npm)")
    return decks.build(book=book)


@pytest.fixture(scope="module")
def chromium(built: list[Path]):  # noqa: ANN201 (playwright's Browser)
    if browser.missing():
        _missing(f"the decks' tests need {browser.missing()}")
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)
    try:
        with browser.chromium() as chromium:
            yield chromium
    except BuildError as error:
        pytest.fail(str(error))


@pytest.fixture(scope="module")
def server(built: list[Path]):  # noqa: ANN201
    with browser.serve(DECKS) as url:
        yield url


def test_every_lecture_equation_is_in_a_chapter() -> None:
    found = {n for chapter in CHAPTERS for n in lecture_equations_of(chapter).values()}
    assert found == {1, 2, 3, 4, 5}, f"the chapters define the lecture's equations {found}"


def test_every_chapter_has_a_deck_that_the_book_links(book: Path, built: list[Path]) -> None:
    assert [deck.stem for deck in built] == CHAPTERS
    for page in [book / "intro.html", *(book / "chapters" / f"{c}.html" for c in CHAPTERS)]:
        soup = BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")
        linked = {
            (page.parent / a["href"]).resolve()
            for a in soup.find_all("a", href=True)
            if a["href"].endswith(".html") and "/slides/" in a["href"]
        }
        expected = set(built) if page.name == "intro.html" else {DECKS / page.name}
        assert linked == {deck.resolve() for deck in expected}, f"{page.name} links {linked}"


# Run in the deck once reveal.js is ready: every slide in turn, with its fragments shown.
INSPECT_SLIDES = """async (MIN_FIGURE_HEIGHT) => {
  if (!Reveal.isReady()) { await new Promise((done) => Reveal.on("ready", done)); }
  await Promise.all(Array.from(document.images, (img) => img.decode().catch(() => null)));
  await document.fonts.ready;
  const area = document.querySelector(".reveal .slides");
  // The height an image is drawn at (object-fit "contain" fits it into its box), and the
  // height it is legible at: MIN_FIGURE_HEIGHT, or as high as the slide's width allows.
  const drawnHeight = (img) => img.naturalHeight
    * Math.min(img.clientWidth / img.naturalWidth, img.clientHeight / img.naturalHeight);
  const legibleHeight = (img, slide) => {
    const style = getComputedStyle(slide);
    const room = slide.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    return Math.min(MIN_FIGURE_HEIGHT, img.naturalHeight * room / img.naturalWidth) - 1;
  };
  const describe = (el) => `<${el.tagName.toLowerCase()}> ${el.textContent.trim().slice(0, 50)}`;
  const results = [];
  for (const slide of Reveal.getSlides()) {
    const { h, v = 0 } = Reveal.getIndices(slide);
    Reveal.slide(h, v);
    slide.querySelectorAll(".fragment").forEach((f) => f.classList.add("visible"));
    const box = area.getBoundingClientRect();
    // What the slide shows; an equation as a whole (MathJax's parts of it may stick out).
    const shown = Array.from(slide.querySelectorAll("*")).filter((el) => !el.closest(".notes")
      && (el.matches("mjx-container") || !el.closest("mjx-container")));
    const outside = shown.filter((el) => {
      const r = el.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) return false;
      return r.left < box.left - 1 || r.right > box.right + 1
        || r.top < box.top - 1 || r.bottom > box.bottom + 1;
    });
    const maths = shown.filter((el) => el.matches(".math"));
    results.push({
      h, v,
      title: slide.querySelector("h1, h2, h3")?.textContent.replace("#", "").trim() || "",
      shows: shown.some((el) => el.matches("h1, h2, h3, p, li, img, .math, table")),
      overflow: outside.filter((el) => !outside.includes(el.parentElement)).map(describe),
      scrolls: shown.filter((el) => el.scrollWidth > el.clientWidth + 1
        && getComputedStyle(el).overflowX !== "visible").map(describe),
      untypeset: maths.filter((m) => !m.querySelector("mjx-container")).map(describe),
      mathErrors: Array.from(slide.querySelectorAll("mjx-merror"), describe),
      smallFigures: shown.filter((el) => el.matches("img") && el.naturalHeight > 0)
        .filter((img) => drawnHeight(img) < legibleHeight(img, slide))
        .map((img) => `${img.alt.slice(0, 50)}: ${Math.round(drawnHeight(img))} px`),
      brokenImages: shown.filter((el) => el.matches("img"))
        .filter((img) => !(img.complete && img.naturalWidth > 0)).map((img) => img.src),
      equations: shown.filter((el) => el.matches("div.math[id]"))
        .map((m) => [m.id.replace("equation-", ""), m.querySelector(".eqno")?.textContent || ""]),
    });
  }
  return results;
}"""


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_slide_displays_completely_offline(server: str, chromium, chapter: str) -> None:
    errors: list[str] = []
    with browser.offline_page(chromium, server, viewport=SLIDE) as (page, blocked):
        page.on("console", lambda m: m.type == "error" and errors.append(f"console: {m.text}"))
        page.on("pageerror", lambda e: errors.append(f"exception: {e}"))
        response = page.goto(f"{server}/{chapter}.html", wait_until="load")
        slides = page.evaluate(INSPECT_SLIDES, MIN_FIGURE_HEIGHT)
        shots = _screenshots(page, chapter, slides)

    problems = [*errors, *(f"blocked request to {url}" for url in blocked)]
    if response is None or not response.ok:
        problems.append(f"HTTP {response.status if response else 'no response'}")
    for slide in slides:
        where = f"slide {slide['h'] + 1}.{slide['v'] + 1} ({slide['title']!r})"
        problems += [f"{where}: beyond the slide: {e}" for e in slide["overflow"]]
        problems += [f"{where}: scrolls sideways: {e}" for e in slide["scrolls"]]
        problems += [f"{where}: equation not typeset: {e}" for e in slide["untypeset"]]
        problems += [f"{where}: MathJax error: {e}" for e in slide["mathErrors"]]
        problems += [f"{where}: image not loaded: {e}" for e in slide["brokenImages"]]
        problems += [f"{where}: figure shrunk to illegible: {e}" for e in slide["smallFigures"]]
        if not slide["shows"]:
            problems.append(f"{where} shows nothing: its cells are all in the notes")
    shown = {label: number for s in slides for label, number in s["equations"]}
    for label, number in lecture_equations_of(chapter).items():
        if shown.get(label) != f"({number})":
            problems.append(f"the lecture's eq. {number} ({label}) is on no slide: {shown}")
    if len(slides) < 3:
        problems.append(f"only {len(slides)} slides: give the cells slideshow metadata")
    assert not problems, f"{chapter} (screenshots {shots}):\n" + "\n".join(problems)


def _screenshots(page, chapter: str, slides: list[dict]) -> list[str]:  # noqa: ANN001
    """The first slide with each lecture equation, and the title slide, as PNG."""
    wanted = {"title": (0, 0)}
    for label, number in lecture_equations_of(chapter).items():
        on = [(s["h"], s["v"]) for s in slides if label in dict(s["equations"])]
        if on:
            wanted[f"eq{number}"] = on[0]
    names = []
    for name, (h, v) in wanted.items():
        page.evaluate("([h, v]) => Reveal.slide(h, v)", [h, v])
        path = SCREENSHOTS / f"{chapter}-{name}.png"
        page.screenshot(path=path)
        names.append(path.name)
    return names
