"""One reveal.js deck per chapter, cut from the chapter's page in the built book.

The book build executed the chapter and wrote its page with every figure, equation number,
citation and glued number in place, and ``_ext/lecture_slides.py`` marked each block of the
page with the notebook cell it came from. The cells' ``slideshow`` metadata, as Jupyter and
nbconvert use it, arranges the cells into slides:

- ``slide``: the cell starts a new slide; ``subslide``: a new slide below the current one;
- ``fragment``: the cell appears on the current slide at the next step;
- ``-`` (or no metadata): the cell goes on the current slide;
- ``notes``: the whole cell goes into the speaker notes; ``skip``: it stays in the book only.

On its slide a cell shows its headings, display equations, lists, tables and figures, never
its code. Its paragraphs, the book's narrative, and its code's text output go into the
speaker notes (press S while presenting). A heading of level 1 or 2 after something shown
starts a new slide, even within a cell; a list after a list shown goes on a slide below, so
that a slide shows one list. A code cell's figures go side by side, or one below the other,
or each on a slide of its own, whichever first lets every one of them read from the back of
the room. A slide without a title of its own shows the title of the slide it continues. A
last slide lists the works the deck cites, as the book's bibliography gives them.
"""

from __future__ import annotations

import posixpath
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from string import Template

import nbformat
from bs4 import BeautifulSoup, Tag
from PIL import Image

from slides import BOOK, DECKS, NOTEBOOKS, REVEALJS, BuildError

#: Jupyter's slide types (cell metadata ``slideshow.slide_type``).
SLIDE_TYPES = ("slide", "subslide", "fragment", "-", "notes", "skip")
#: The mark of ``_ext/lecture_slides.py``: the block came from notebook cell i.
CELL = re.compile(r"^nb-cell-(\d+)$")
#: A slide's own title: its first element, a heading of level 1 or 2.
HEADING = re.compile(r"^<(h[12])\b[^>]*>(.*?)</\1>", re.S)
#: Lists: a slide shows one.
LISTS = ("ul", "ol")
#: The room a slide leaves to figures below its title, in pixels (deck.css: a slide of
#: 1280x720 with 16 and 40 px of padding, and a title line), and the gap between figures side
#: by side.
ROOM = (1200, 600)
GAP = 30
#: A figure reads from the back of the room at half the slide's height, or at the height it has
#: at the room's full width where that is less (tests/test_decks.py checks every figure).
LEGIBLE = 360
#: The slide of the works cited; citations link to it.
REFERENCES = "references"
HERE = Path(__file__).resolve().parent


@dataclass
class Slide:
    """One slide: the HTML it shows and the HTML of its speaker notes."""

    shown: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def slide_type(cell: dict, where: str) -> str:
    """A cell's slide type; an unknown one is an error that names the cell."""
    kind = cell.get("metadata", {}).get("slideshow", {}).get("slide_type", "-")
    if kind not in SLIDE_TYPES:
        raise BuildError(f"{where}: slide_type {kind!r} is none of {', '.join(SLIDE_TYPES)}")
    return kind


def split(block: Tag) -> tuple[list[Tag], list[Tag]]:
    """What of one block of the page shows on the slide, and what goes into the notes."""
    classes = block.get("class", [])
    if "cell" in classes:  # a code cell: its figures on the slide, its text in the notes
        outputs = block.select(".cell_output > *")
        figures = [out for out in outputs if out.name in ("img", "figure") or out.find("img")]
        notes = [out for out in outputs if out not in figures]
        if len(figures) > 1:  # shown together (deck.css: side by side, or one below the other)
            row = Tag(name="div", attrs={"class": ["figures"]})
            for figure in figures:
                row.append(figure.extract())
            figures = [row]
        return figures, notes
    if block.name == "p" and block.find("img") is None:
        return [], [block]
    return [block], []


def parts(kind: str, blocks: list[Tag]) -> list[tuple[str, list[Tag]]]:
    """A cell of slide type ``kind`` in parts that each start a slide, with their slide types:
    a heading of level 1 or 2 after something shown starts a new slide; a list after a list
    shown starts a slide below, with all that follows the shown list (the words that introduce
    the second list go into its notes)."""
    if kind in ("notes", "skip"):
        return [(kind, blocks)]
    cut: list[tuple[str, list[Tag]]] = [(kind, [])]
    for block in blocks:
        part = cut[-1][1]
        shown = [i for i, before in enumerate(part) if split(before)[0]]
        if block.name in ("h1", "h2") and shown:
            cut.append(("slide", []))
        elif block.name in LISTS and any(part[i].name in LISTS for i in shown):
            cut.append(("subslide", part[shown[-1] + 1 :]))
            del part[shown[-1] + 1 :]
        cut[-1][1].append(block)
    return cut


def layout(sizes: list[tuple[int, int]]) -> str:
    """How a cell's figures of these sizes (width, height) show: ``"side by side"``, one below
    the other (``"stacked"``) or each on a slide of its own (``"apart"``), whichever first
    draws every figure at least as high as it reads (``LEGIBLE``). deck.css gives figures side
    by side equal widths, and shrinks figures one below the other alike."""
    full = [ROOM[0] * h / w for w, h in sizes]  # each one's height at the room's full width
    legible = [min(LEGIBLE, high) for high in full]
    width = (ROOM[0] - GAP * (len(sizes) - 1)) / len(sizes)
    drawn = {
        "side by side": [min(ROOM[1], high * width / ROOM[0]) for high in full],
        "stacked": [high * min(1, ROOM[1] / sum(full)) for high in full],
    }
    for kind, heights in drawn.items():
        if all(high >= least for high, least in zip(heights, legible, strict=True)):
            return kind
    return "apart"


def arrange(cells: Iterable[tuple[str, list[str], list[str]]]) -> list[list[Slide]]:
    """Slides, in stacks of a slide and its subslides, from each cell's slide type, the HTML
    it shows and the HTML of its notes."""
    stacks: list[list[Slide]] = []
    for kind, shown, notes in cells:
        if kind == "skip":
            continue
        if kind == "slide" or not stacks:
            stacks.append([Slide()])
        elif kind == "subslide":
            stacks[-1].append(Slide())
        slide = stacks[-1][-1]
        if kind == "notes":
            slide.notes += shown + notes
            continue
        if kind == "fragment" and shown:
            shown = [f'<div class="fragment">{"".join(shown)}</div>']
        slide.shown += shown
        slide.notes += notes
    return _titled(stacks)


def _titled(stacks: list[list[Slide]]) -> list[list[Slide]]:
    """A slide without a title of its own continues the last title before it: it shows it."""
    title = None
    for slide in (slide for stack in stacks for slide in stack if slide.shown):
        own = HEADING.match(slide.shown[0])
        if own:
            title = own[2]
        elif title is not None:
            slide.shown.insert(0, f'<h2 class="continued">{title}</h2>')
    return stacks


def _section(slide: Slide) -> str:
    notes = f'<aside class="notes">{"".join(slide.notes)}</aside>' if slide.notes else ""
    return f"<section>{''.join(slide.shown)}{notes}</section>"


def render(stacks: list[list[Slide]]) -> str:
    """reveal.js's sections: a stack of more than one slide is a vertical stack."""
    sections = []
    for stack in stacks:
        inner = "".join(_section(slide) for slide in stack)
        sections.append(inner if len(stack) == 1 else f"<section>{inner}</section>")
    return "\n".join(sections)


def _self_and_below(element: Tag, name: str) -> list[Tag]:
    return [element] * (element.name == name) + element.find_all(name)


class _Page:
    """A chapter's page in the built book, its links and images pointed at the decks' folder."""

    def __init__(self, book: Path, docname: str, chapters: set[str]) -> None:
        self.book, self.docname, self.chapters = book, docname, chapters
        path = book / f"{docname}.html"
        self.soup = BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")
        self.article = self.soup.find("article") or self.soup.body
        self.images: set[str] = set()
        self.cited: list[str] = []  # the bibliography's ids, in the order of first citation

    def title(self) -> str:
        heading = self.article.find("h1")
        if heading is None:
            raise BuildError(f"{self.docname}.html has no title (h1)")
        for link in heading.select("a.headerlink"):
            link.decompose()
        return heading.get_text(" ", strip=True)

    def cells(self) -> dict[int, list[Tag]]:
        """The page's marked blocks by notebook cell, in page order."""
        cells: dict[int, list[Tag]] = {}
        for block in self.article.find_all(class_=CELL):
            if block.find_parent(class_=CELL) is None:
                index = next(int(m[1]) for c in block["class"] if (m := CELL.match(c)))
                cells.setdefault(index, []).append(block)
        if not cells:
            raise BuildError(
                f"{self.docname}.html has no cell marks: build the book with the extension "
                "_ext/lecture_slides.py (_config.yml) and make book"
            )
        return cells

    def html(self, elements: list[Tag]) -> list[str]:
        """The elements' HTML, with their images and links pointed at the decks' folder."""
        for element in elements:
            for image in _self_and_below(element, "img"):
                image["src"] = self._resolve(image["src"])
                self.images.add(image["src"])
            for link in _self_and_below(element, "a"):
                self._relink(link)
        return [str(element) for element in elements]

    def lay_out(self, shown: list[Tag]) -> list[list[Tag]]:
        """What a part shows on its own slide, then on the slide of each figure that goes
        apart: a code cell's figures side by side, stacked, or each on a slide (``layout``)."""
        slides = [shown]
        for row in [element for element in shown if "figures" in element.get("class", [])]:
            figures = row.find_all(recursive=False)
            kind = layout([self._size(figure.find("img") or figure) for figure in figures])
            if kind == "stacked":
                row["class"].append("stacked")
            elif kind == "apart":
                shown[shown.index(row)] = figures[0].extract()
                slides += [[figure.extract()] for figure in figures[1:]]
        return slides

    def _size(self, image: Tag) -> tuple[int, int]:
        with Image.open(self.book / self._resolve(image["src"])) as picture:
            return picture.size

    def _resolve(self, url: str) -> str:
        return posixpath.normpath(posixpath.join(posixpath.dirname(self.docname), url))

    def _relink(self, link: Tag) -> None:
        href = link.get("href", "")
        if "headerlink" in link.get("class", []):
            link.decompose()
        elif href.startswith(("http:", "https:", "mailto:")):
            return
        elif not href or href.startswith("#"):  # within the page: equations, sections
            link.unwrap()
        else:
            path, _, fragment = href.partition("#")
            target = self._resolve(path)
            if target == "bibliography.html" and fragment:
                self.cited += [fragment] if fragment not in self.cited else []
                link["href"] = f"#/{REFERENCES}"
            elif target.removesuffix(".html") in self.chapters:
                link["href"] = posixpath.basename(target)  # that chapter's deck
            else:  # elsewhere in the book
                link["href"] = f"../{self.book.name}/{target}" + (f"#{fragment}" * bool(fragment))


def _references(book: Path, cited: list[str]) -> str:
    """The slide of the works cited, each as the book's bibliography gives it."""
    page = BeautifulSoup((book / "bibliography.html").read_text(encoding="utf-8"), "html.parser")
    items = []
    for entry_id in cited:
        entry = page.find(id=entry_id)
        if entry is None:
            raise BuildError(f"bibliography.html has no entry #{entry_id}")
        for link in entry.find_all("a"):
            link.unwrap()
        label = entry.find(class_="label")
        label_text = label.extract().get_text("", strip=True) if label else ""
        work = (entry.p or entry).decode_contents()
        items.append(f'<li><span class="label">{label_text}</span> {work}</li>')
    return f'<section id="{REFERENCES}"><h2>References</h2><ul>{"".join(items)}</ul></section>'


def deck(
    book: Path, notebooks: Path, docname: str, chapters: set[str]
) -> tuple[str, str, set[str]]:
    """The title, the slides' HTML and the images used of one chapter's deck."""
    notebook_path = notebooks / f"{docname}.ipynb"
    if not notebook_path.is_file():
        raise BuildError(f"no notebook {notebook_path} from the book build: run make book")
    notebook = nbformat.read(notebook_path, as_version=4)
    page = _Page(book, docname, chapters)
    title = page.title()
    cells = page.cells()
    if max(cells) >= len(notebook.cells):
        raise BuildError(f"{docname}.html does not match {notebook_path}: run make book")
    arranged = []
    for index, blocks in cells.items():
        kind = slide_type(notebook.cells[index], f"{docname}.ipynb, cell {index + 1}")
        for part_kind, part in parts(kind, blocks):
            shown, notes = zip(*(split(block) for block in part), strict=True)
            first, *apart = page.lay_out(sum(shown, []))
            arranged.append((part_kind, page.html(first), page.html(sum(notes, []))))
            arranged += [("subslide", page.html(figure), []) for figure in apart]
    slides = render(arrange(arranged))
    if page.cited:
        slides += "\n" + _references(book, page.cited)
    return title, slides, page.images


def _require(book: Path, notebooks: Path, revealjs: Path) -> None:
    if not (book / "index.html").is_file() or not notebooks.is_dir():
        raise BuildError(f"no built book in {book}: run make book first")
    if not (revealjs / "dist" / "reveal.js").is_file():
        raise BuildError(
            f"reveal.js is missing in {revealjs}: make slides fetches it with npm "
            "(install Node.js with npm, then run make slides again)"
        )
    if not (book / "_static" / "mathjax" / "tex-mml-chtml.js").is_file():
        raise BuildError(
            "the book has no local MathJax (_static/mathjax/): install Node.js with npm and "
            "run make book again, which fetches it"
        )


def build(
    book: Path = BOOK, notebooks: Path = NOTEBOOKS, out: Path = DECKS, revealjs: Path = REVEALJS
) -> list[Path]:
    """Write a deck for each chapter page of the built book into ``out``; return the decks."""
    _require(book, notebooks, revealjs)
    chapters = {
        path.relative_to(book).with_suffix("").as_posix() for path in book.glob("chapters/*.html")
    }
    shutil.rmtree(out, ignore_errors=True)
    static = out / "_static"
    shutil.copytree(revealjs, static / "reveal.js")
    shutil.copytree(book / "_static" / "mathjax", static / "mathjax")
    for name in ("deck.css", "deck.js"):
        shutil.copy2(HERE / name, static / name)
    template = Template((HERE / "deck.html").read_text(encoding="utf-8"))
    written = []
    for docname in sorted(chapters):
        title, slides, images = deck(book, notebooks, docname, chapters)
        for image in images:
            (out / image).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(book / image, out / image)
        path = out / f"{posixpath.basename(docname)}.html"
        path.write_text(template.substitute(title=escape(title), slides=slides), encoding="utf-8")
        written.append(path)
    return written
