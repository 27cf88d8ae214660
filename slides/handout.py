"""The book as a PDF handout, and each deck as a PDF, printed by Debian's Chromium.

The book's pages, in its reading order (each page's "next" link, from the root page on), are
put into one HTML document, ``_build/pdf/book.html``: each page's article, its ids made unique
and its links between pages turned into links within the document. Chromium prints it with the
book's own styles and ``handout.css`` (a new page for every page of the book, code lines
wrapped, figures and equations kept whole) once MathJax has typeset every equation. Each deck
of ``make slides`` is printed through reveal.js's print view (``?print-pdf``), a slide a page.
"""

from __future__ import annotations

import posixpath
import re
import shutil
from html import escape
from pathlib import Path

from bs4 import BeautifulSoup, SoupStrainer

from slides import BOOK, DECKS, PDF, BuildError, browser

HERE = Path(__file__).resolve().parent
#: Run in a page once it has loaded: wait for MathJax, the images and the fonts, then report
#: what did not display.
SETTLE = """async () => {
  if (window.MathJax && MathJax.startup) { await MathJax.startup.promise; }
  await Promise.all(Array.from(document.images, (img) => img.decode().catch(() => null)));
  await document.fonts.ready;
  return {
    untypeset: Array.from(document.querySelectorAll(".math"))
      .filter((m) => !m.closest(".notes") && !m.querySelector("mjx-container"))
      .map((m) => m.textContent.slice(0, 60)),
    brokenImages: Array.from(document.images)
      .filter((img) => !(img.complete && img.naturalWidth > 0))
      .map((img) => img.getAttribute("src")),
  };
}"""
#: Page numbers at the foot of every page of the handout.
FOOTER = (
    '<div style="font-size: 8px; width: 100%; text-align: center;">'
    '<span class="pageNumber"></span> / <span class="totalPages"></span></div>'
)


def reading_order(book: Path) -> list[str]:
    """The book's pages in reading order, from the root page along the "next" links."""
    index = _parse(book / "index.html", "meta")
    refresh = index.find("meta", attrs={"http-equiv": re.compile("^refresh$", re.I)})
    page = refresh["content"].partition("url=")[2] if refresh else "index.html"
    pages: list[str] = []
    while page and page not in pages:
        pages.append(page)
        following = _parse(book / page, "link").find("link", rel="next")
        page = _join(page, following["href"]) if following else None
    return pages


def _parse(path: Path, *only: str) -> BeautifulSoup:
    """The page's elements of the kinds named (all of them: quicker than the whole page)."""
    return BeautifulSoup(
        path.read_text(encoding="utf-8"), "html.parser", parse_only=SoupStrainer(only)
    )


def _join(page: str, url: str) -> str:
    return posixpath.normpath(posixpath.join(posixpath.dirname(page), url))


def _anchor(page: str, fragment: str = "") -> str:
    slug = page.removesuffix(".html").replace("/", "-")
    return f"{slug}--{fragment}" if fragment else slug


def one_document(book: Path, pages: list[str], prefix: str) -> str:
    """The pages' articles as one HTML document that reaches the book's files at ``prefix``."""
    root = _parse(book / pages[0], "link", "title")
    styles = [
        f'<link rel="stylesheet" href="{prefix}{_join(pages[0], link["href"])}">'
        for link in root.find_all("link", rel="stylesheet")
    ]
    title = escape(root.title.get_text(strip=True) if root.title else book.name)
    body = []
    for page in pages:
        article = _parse(book / page, "article").find("article")
        if article is None:
            raise BuildError(f"{page} has no article: is {book} a Jupyter Book?")
        for element in article.select(".deck-link, a.headerlink"):
            element.decompose()
        for element in article.find_all(id=True):
            element["id"] = _anchor(page, element["id"])
        for image in article.find_all("img", src=True):
            image["src"] = prefix + _join(page, image["src"])
        for link in article.find_all("a", href=True):
            href = link["href"]
            if href.startswith(("http:", "https:", "mailto:")):
                continue
            path, _, fragment = href.partition("#")
            target = _join(page, path) if path else page
            if target in pages:
                link["href"] = "#" + _anchor(target, fragment)
            else:  # the index, the search page, downloads: not in the handout
                link.unwrap()
        body.append(f'<section class="handout-page" id="{_anchor(page)}">{article}</section>')
    return f"""<!DOCTYPE html>
<html lang="en" data-theme="light">
<head>
<meta charset="utf-8">
<title>{title}</title>
{"".join(styles)}
<link rel="stylesheet" href="handout.css">
<script>window.MathJax = {{options: {{processHtmlClass: "math"}}}};</script>
<script defer src="{prefix}_static/mathjax/tex-mml-chtml.js"></script>
</head>
<body>
{"".join(body)}
</body>
</html>
"""


def _settle(page, url: str) -> None:  # noqa: ANN001 (playwright's Page)
    page.goto(url, wait_until="load")
    state = page.evaluate(SETTLE)
    problems = [f"equation not typeset: {tex!r}" for tex in state["untypeset"]]
    problems += [f"image not loaded: {src}" for src in state["brokenImages"]]
    if problems:
        raise BuildError(f"{url} does not display completely:\n" + "\n".join(problems))


def print_book(book: Path = BOOK, out: Path = PDF) -> Path:
    """``out/book.pdf``: every page of the built book, in reading order."""
    if not (book / "_static" / "mathjax" / "tex-mml-chtml.js").is_file():
        raise BuildError(
            f"no built book with its local MathJax in {book}: run make book first "
            "(it fetches MathJax with npm)"
        )
    out.mkdir(parents=True, exist_ok=True)
    prefix = posixpath.relpath(book, out) + "/"
    (out / "book.html").write_text(
        one_document(book, reading_order(book), prefix), encoding="utf-8"
    )
    shutil.copy2(HERE / "handout.css", out / "handout.css")
    served = Path(posixpath.commonpath([book, out]))
    with browser.serve(served) as server, browser.chromium() as chromium:
        with browser.offline_page(chromium, server) as (page, blocked):
            _settle(page, f"{server}/{(out / 'book.html').relative_to(served).as_posix()}")
            if blocked:
                raise BuildError(f"the handout asked for files outside the book: {blocked}")
            page.pdf(
                path=out / "book.pdf",
                format="A4",
                margin={"top": "15mm", "bottom": "18mm", "left": "15mm", "right": "15mm"},
                print_background=True,
                display_header_footer=True,
                header_template="<div></div>",
                footer_template=FOOTER,
                outline=True,
                tagged=True,
            )
    return out / "book.pdf"


#: Run in each deck before its scripts: notes when reveal.js has laid the slides out for print.
PRINT_LAYOUT_DONE = "document.addEventListener('pdf-ready', () => { window.printLayoutDone = 1; })"


def print_decks(decks: Path = DECKS, out: Path = PDF) -> list[Path]:
    """``out/slides-<chapter>.pdf`` for each deck in ``decks``, one slide a page."""
    written = []
    out.mkdir(parents=True, exist_ok=True)
    with browser.serve(decks) as server, browser.chromium() as chromium:
        with browser.offline_page(chromium, server) as (page, blocked):
            # reveal.js lays the slides out as pages after it is ready, a frame or more later,
            # and says so with the event pdf-ready: printed before it, a deck is one page.
            page.add_init_script(PRINT_LAYOUT_DONE)
            for deck in sorted(decks.glob("*.html")):
                _settle(page, f"{server}/{deck.name}?print-pdf")
                page.wait_for_function("window.printLayoutDone === 1")
                path = out / f"slides-{deck.stem}.pdf"
                page.pdf(path=path, print_background=True, prefer_css_page_size=True)
                written.append(path)
            if blocked:
                raise BuildError(f"the decks asked for files outside their folder: {blocked}")
    return written
