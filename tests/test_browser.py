"""The built book as a reader sees it: every page opened in headless Chromium, offline.

The book of the session fixture ``book`` (conftest.py) is served on 127.0.0.1 and every page
is opened in Debian's Chromium, driven by Playwright, with every request to anywhere else
blocked. On each page the images have loaded, MathJax has typeset every equation, the
console shows no error, every link into the book resolves, nothing scrolls sideways and each
chapter shows the figures its notebook produced. A screenshot of each page lands in
``_build/screenshots/``.

The pages are those of ``_toc.yml`` plus Sphinx's own (index, search, ...), so chapters added
later are checked without a change here. Where Chromium or Playwright is missing the browser
tests skip and name what to install; in CI (``CI=true``) they fail instead.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from functools import cache
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest
import yaml

from slides import browser as browser_tools

REPO = Path(__file__).resolve().parents[1]
SCREENSHOTS = REPO / "_build" / "screenshots"
EXECUTION_CACHE = REPO / "_build" / ".jupyter_cache"
#: Debian's Chromium (apt-get install chromium); Playwright never downloads a browser here.
CHROMIUM = Path(os.environ.get("XNN_CHROMIUM", "/usr/bin/chromium"))
#: Pages Sphinx writes besides those of _toc.yml (py-modindex: for the library's reference).
SPHINX_PAGES = ("index", "genindex", "search", "py-modindex")
#: Tags with which a code cell's output does not appear in the book.
OUTPUT_REMOVED = {"remove-cell", "remove-output", "remove_cell", "remove_output"}
#: Mime types myst-nb shows as an <img>.
IMAGE_TYPES = ("image/png", "image/jpeg", "image/svg+xml", "image/gif")
#: What a page shows where MathJax did not typeset: TeX's delimiters and environments.
RAW_TEX = ("$$", "\\(", "\\[", "\\begin{")
#: Colour maps that colour-blind readers cannot read (no monotonic lightness).
RAINBOW_MAPS = ("jet", "rainbow", "hsv", "gist_rainbow", "nipy_spectral", "gist_ncar")


def _toc_docnames() -> list[str]:
    toc = yaml.safe_load((REPO / "_toc.yml").read_text(encoding="utf-8"))

    def files(entries: list[dict]) -> Iterator[str]:
        for entry in entries:
            if "file" in entry:
                yield str(Path(entry["file"]).with_suffix(""))
            for key in ("parts", "chapters", "sections"):
                yield from files(entry.get(key, []))

    return [toc["root"], *files([toc])]


TOC_PAGES = _toc_docnames()
CHAPTERS = [name for name in TOC_PAGES if name.startswith("chapters/")]


def _executed(chapter: str) -> nbformat.NotebookNode:
    """The chapter's notebook with the outputs of the book's build (jupyter-cache)."""
    from jupyter_cache import get_cache

    notebook = nbformat.read(REPO / f"{chapter}.ipynb", as_version=4)
    try:
        return get_cache(EXECUTION_CACHE).merge_match_into_notebook(notebook)[1]
    except KeyError:
        pytest.fail(f"{chapter}.ipynb has no executed copy in {EXECUTION_CACHE}")


def _figure_cells(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    """Code cells whose output the book shows and that produced at least one image."""
    return [
        cell
        for cell in notebook.cells
        if cell.cell_type == "code"
        and not OUTPUT_REMOVED & set(cell.metadata.get("tags", []))
        and any(_shows_image(output) for output in cell.get("outputs", []))
    ]


def _shows_image(output: dict) -> bool:
    data = output.get("data", {})
    return any(kind in data for kind in IMAGE_TYPES) and "text/html" not in data


class _Targets(HTMLParser):
    """The ids of a page: what a link's #fragment may point at."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.feed(path.read_text(encoding="utf-8"))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("id", "name") and value:
                self.ids.add(value)


@cache
def _ids(path: Path) -> frozenset[str]:
    return frozenset(_Targets(path).ids)


# ---------------------------------------------------------------------------------------------
# Checks that need the built book but no browser.


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_figure_has_alt_text_or_a_caption(book: Path, chapter: str) -> None:
    """Each figure-producing cell says what its figure shows, for readers who cannot see it:
    cell metadata ``"mystnb": {"image": {"alt": "..."}}`` (or ``{"figure": {"caption": ...}}``).
    """
    cells = _figure_cells(_executed(chapter))
    assert cells, f"{chapter} produced no figure: was it executed?"
    missing = [
        cell.source.strip().splitlines()[0]
        for cell in cells
        if not str(cell.metadata.get("mystnb", {}).get("image", {}).get("alt", "")).strip()
        and not str(cell.metadata.get("mystnb", {}).get("figure", {}).get("caption", "")).strip()
    ]
    assert not missing, (
        f"{chapter}.ipynb: these figure cells need alt text, cell metadata "
        f'"mystnb": {{"image": {{"alt": "what the figure shows"}}}}: {missing}'
    )


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_no_rainbow_colour_maps(chapter: str) -> None:
    """Colour maps come from lib.plot: diverging for signed maps, sequential for magnitudes."""
    notebook = nbformat.read(REPO / f"{chapter}.ipynb", as_version=4)
    sources = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    sources += [path.read_text(encoding="utf-8") for path in sorted((REPO / "lib").glob("*.py"))]
    used = [name for name in RAINBOW_MAPS for source in sources if f'"{name}"' in source]
    assert not used, f"{chapter} or lib uses {used}: use lib.plot.DIVERGING or a sequential map"


# ---------------------------------------------------------------------------------------------
# The browser.


def _missing_browser() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright's Python package (make setup installs it with the dev extras)"
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        return f"Debian's Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


@pytest.fixture(scope="module")
def server(book: Path) -> Iterator[str]:
    """The built book over HTTP on 127.0.0.1 (a free port), as a web server would serve it."""
    with browser_tools.serve(book) as url:
        yield url


@pytest.fixture(scope="module")
def browser(book: Path):  # noqa: ANN201 (playwright's Browser, imported lazily)
    missing = _missing_browser()
    if missing:
        message = f"the browser tests need {missing}"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{message}; CI must not skip them (make browser installs Chromium)")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield chromium
        chromium.close()


# Run in the page once it has loaded: wait for MathJax and for every image, then report.
INSPECT = """async () => {
  if (window.MathJax && MathJax.startup) { await MathJax.startup.promise; }
  await Promise.all(Array.from(document.images, (img) => {
    img.loading = "eager";
    return img.decode().catch(() => null);
  }));
  await document.fonts.ready;
  const rawText = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    if (!parent || parent.closest("pre, code, script, style, textarea, mjx-container")) continue;
    if (!parent.checkVisibility()) continue;
    rawText.push(node.data);
  }
  const maths = Array.from(document.querySelectorAll(".math"));
  const outputImages = Array.from(document.querySelectorAll(".cell_output img"));
  const root = document.documentElement;
  return {
    text: rawText.join(" "),
    mathjax: Boolean(window.MathJax && MathJax.startup),
    maths: maths.length,
    untypeset: maths.filter((m) => !m.querySelector("mjx-container")).map((m) => m.textContent),
    mathErrors: Array.from(document.querySelectorAll("mjx-merror"), (m) => m.textContent),
    brokenImages: Array.from(document.images)
      .filter((img) => !(img.complete && img.naturalWidth > 0))
      .map((img) => img.getAttribute("src")),
    outputImages: outputImages.map((img) => ({
      src: img.getAttribute("src"),
      alt: img.getAttribute("alt") || "",
      caption: img.closest("figure")?.querySelector("figcaption")?.textContent || "",
      shown: img.naturalWidth > 0 && img.getBoundingClientRect().width > 0,
    })),
    links: Array.from(document.querySelectorAll("a[href]"), (a) => a.href),
    sideways: root.scrollWidth > root.clientWidth + 1,
    wideOutputs: Array.from(document.querySelectorAll(".cell_output pre"))
      .filter((pre) => pre.scrollWidth > pre.clientWidth + 1)
      .map((pre) => pre.textContent.slice(0, 60)),
  };
}"""


def test_every_built_page_is_checked(book: Path) -> None:
    """No page of the build escapes the browser test below."""
    built = {
        str(path.relative_to(book).with_suffix(""))
        for path in book.rglob("*.html")
        if path.relative_to(book).parts[0] not in ("_static", "_sources", "_images")
    }
    checked = {*TOC_PAGES, *SPHINX_PAGES}
    assert built, "the build wrote no page"
    assert built <= checked, f"pages the browser test does not open: {sorted(built - checked)}"
    assert set(TOC_PAGES) <= built, f"pages of _toc.yml not built: {set(TOC_PAGES) - built}"


@pytest.mark.browser
@pytest.mark.parametrize("docname", [*TOC_PAGES, *SPHINX_PAGES])
def test_page_displays_completely_offline(book: Path, server: str, browser, docname: str) -> None:
    assert (book / f"{docname}.html").is_file(), f"the build wrote no {docname}.html"
    errors: list[str] = []
    viewport = {"width": 1280, "height": 900}
    with browser_tools.offline_page(browser, server, viewport=viewport) as (page, blocked):
        page.on("console", lambda m: m.type == "error" and errors.append(f"console: {m.text}"))
        page.on("pageerror", lambda e: errors.append(f"exception: {e}"))
        page.on(
            "requestfailed",
            lambda r: r.url.startswith(server) and errors.append(f"failed: {r.url} {r.failure}"),
        )
        url = f"{server}/{docname}.html"
        response = page.goto(url, wait_until="load")
        source = (book / f"{docname}.html").read_text(encoding="utf-8").lower()
        if 'http-equiv="refresh"' in source:  # index.html: a redirect to the root page
            page.wait_for_url(lambda now: now != url, wait_until="load")
        state = page.evaluate(INSPECT)
        shot = SCREENSHOTS / f"{docname.replace('/', '__')}.png"
        page.screenshot(path=shot, full_page=True)

    problems = list(errors)
    if response is None or not response.ok:
        problems.append(f"HTTP {response.status if response else 'no response'}")
    problems += [f"blocked request to {url}" for url in blocked]
    problems += [f"image not loaded: {src}" for src in state["brokenImages"]]
    if state["maths"] and not state["mathjax"]:
        problems.append(f"{state['maths']} equations but MathJax did not start")
    problems += [f"equation not typeset: {tex[:60]!r}" for tex in state["untypeset"]]
    problems += [f"MathJax error: {text[:60]!r}" for text in state["mathErrors"]]
    problems += [f"raw TeX {token!r} in the text" for token in RAW_TEX if token in state["text"]]
    if state["sideways"]:
        problems.append("the page scrolls sideways")
    problems += [f"output line does not wrap: {text!r}" for text in state["wideOutputs"]]
    problems += _broken_links(book, server, docname, state["links"])
    if docname in CHAPTERS:
        problems += _missing_figures(docname, state["outputImages"])
    assert not problems, f"{docname}.html (screenshot {shot.name}):\n" + "\n".join(problems)


def _broken_links(book: Path, server: str, docname: str, links: list[str]) -> list[str]:
    broken = []
    for link in sorted(set(links)):
        if not link.startswith(server + "/"):
            continue  # other sites: not followed, and the browser test opens no other site
        parts = urlsplit(link)
        if parts.path.startswith("/slides/"):
            continue  # the lecture's decks beside the book: tests/test_decks.py follows these
        target = book / unquote(parts.path).lstrip("/")
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            broken.append(f"link to a missing page: {link}")
        elif parts.fragment and target.suffix == ".html":
            if unquote(parts.fragment) not in _ids(target):
                broken.append(f"link to a missing anchor: {link}")
    return broken


def _missing_figures(chapter: str, shown: list[dict]) -> list[str]:
    cells = _figure_cells(_executed(chapter))
    produced = sum(_shows_image(output) for cell in cells for output in cell.outputs)
    problems = []
    if len(shown) != produced:
        problems.append(f"the notebook produced {produced} figures, the page has {len(shown)}")
    problems += [f"figure not shown: {image['src']}" for image in shown if not image["shown"]]
    problems += [
        f"figure without alt text or caption: {image['src']}"
        for image in shown
        if image["alt"].strip() in ("", image["src"]) and not image["caption"].strip()
    ]
    return problems


#: The cell tag of a code cell that draws an ImageNet attribution figure (chapters 4 and 5);
#: myst-nb turns it into the class ``tag_imagenet-figure`` of the cell in the HTML.
IMAGENET_FIGURE_TAG = "imagenet-figure"


def _imagenet_loaded(notebook: nbformat.NotebookNode) -> bool:
    """Whether the executed chapter loaded an ImageNet network (the loader prints a line)."""
    text = "".join(
        output.get("text", "") for cell in notebook.cells for output in cell.get("outputs", [])
    )
    return "ImageNet mobilenet_v2: " in text and "no weights" not in text


#: Page width of the width check, as in the test above.
WINDOW = {"width": 1280, "height": 900}
#: Where the page's content column is: the cells' own width.
COLUMN_WIDTH = """() => Array.from(document.querySelectorAll('.tag_imagenet-figure'), (cell) =>
  Array.from(cell.querySelectorAll('.cell_output img'), (img) => ({
    src: img.getAttribute('src'),
    drawn: img.getBoundingClientRect().width,
    column: cell.getBoundingClientRect().width,
  }))).flat()"""


@pytest.mark.parametrize(
    "chapter", [c for c in CHAPTERS if Path(c).name.startswith(("04_", "05_", "06_"))]
)
def test_imagenet_attribution_figures_fill_the_content_column(
    book: Path, server: str, browser, chapter: str
) -> None:
    """Each figure of a cell tagged ``imagenet-figure`` is drawn as wide as the content
    column at a 1280 px window, so that an attribution map of a photo reads at 100% zoom."""
    cells = [
        cell
        for cell in _figure_cells(_executed(chapter))
        if IMAGENET_FIGURE_TAG in cell.metadata.get("tags", [])
    ]
    produced = sum(_shows_image(output) for cell in cells for output in cell.outputs)
    if Path(chapter).name.startswith("04_"):  # its saliency maps of photos are tagged
        assert produced or not _imagenet_loaded(_executed(chapter)), "no tagged figure"
    context = browser.new_context(viewport=WINDOW)
    try:
        page = context.new_page()
        page.goto(f"{server}/{chapter}.html", wait_until="load")
        page.evaluate(INSPECT)  # every image decoded, so that its size is final
        figures = page.evaluate(COLUMN_WIDTH)
    finally:
        context.close()
    assert len(figures) == produced, f"{produced} tagged figures produced, {len(figures)} shown"
    narrow = [f for f in figures if f["drawn"] < 0.97 * f["column"]]
    assert not narrow, f"{chapter}: figures narrower than the column: {narrow}"
