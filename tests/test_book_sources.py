"""What the book is built from: only the pages of its table of contents, and MathJax.

A repository holds more notebooks than the book's: those of tox or nox environments, a
second virtual environment (``.venv-3.12/``), drafts. ``make book`` must neither read nor
execute them, so that a failing one cannot break the build. Checked on a one-page book with
the course's own ``_config.yml`` and extensions, surrounded by notebooks that fail and leave
a mark when they run. That book has no local MathJax (as on a machine without npm): it must
still build, load MathJax from the CDN and say so. (With the local copy, tests/test_browser.py
shows the equations typeset with the network blocked.)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.book

REPO = Path(__file__).resolve().parents[1]
JUPYTER_BOOK = Path(sys.executable).parent / "jupyter-book"
#: Folders beside the book's pages that are not part of the book.
DECOY_FOLDERS = (".tox/py311/share", ".nox", ".venv-3.12", "chapters/.hidden", "drafts")


def _decoy(folder: Path, marker: Path) -> None:
    """A notebook that leaves ``marker`` and fails when run, and a page that fails to build."""
    folder.mkdir(parents=True)
    code = f"from pathlib import Path\nPath({str(marker)!r}).touch()\nraise RuntimeError('ran')"
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(notebook, folder / "decoy.ipynb")
    (folder / "decoy.md").write_text("# Decoy\n\nA {ref}`missing-target`.\n", encoding="utf-8")


@pytest.fixture(scope="module")
def small_book(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path], str]:
    """A one-page book among decoys, built; its folder, the decoys' markers and the log."""
    root = tmp_path_factory.mktemp("small-book")
    book = root / "book"
    book.mkdir()
    for name in ("_config.yml", "references.bib"):
        shutil.copy(REPO / name, book / name)
    shutil.copytree(REPO / "_ext", book / "_ext")
    (book / "_toc.yml").write_text("format: jb-book\nroot: intro\n", encoding="utf-8")
    (book / "intro.md").write_text("# The only page\n\nOf this book: $x^2$.\n", encoding="utf-8")
    markers = {folder: root / f"ran-{index}" for index, folder in enumerate(DECOY_FOLDERS)}
    for folder, marker in markers.items():
        _decoy(book / folder, marker)

    command = [str(JUPYTER_BOOK), "build", "-W", "-n", "--keep-going", str(book)]
    result = subprocess.run(command, cwd=book, capture_output=True, text=True, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"a page outside _toc.yml broke the build:\n{output[-4000:]}"
    return book, markers, output


def test_only_pages_of_the_toc_are_read_or_executed(small_book) -> None:
    book, markers, _ = small_book
    ran = [folder for folder, marker in markers.items() if marker.exists()]
    assert not ran, f"make book executed notebooks outside _toc.yml, in {ran}"
    built = sorted(str(p.relative_to(book)) for p in (book / "_build" / "html").rglob("decoy*"))
    assert not built, f"pages outside _toc.yml were published: {built}"
    assert (book / "_build" / "html" / "intro.html").is_file()


def test_without_local_mathjax_the_book_says_it_needs_the_network(small_book) -> None:
    book, _, output = small_book
    lines = [line for line in output.splitlines() if "MathJax" in line]
    assert len(lines) == 1 and "equations will need the network" in lines[0], lines
    page = (book / "_build" / "html" / "intro.html").read_text(encoding="utf-8")
    assert 'src="https://cdn.jsdelivr.net/npm/mathjax@3/' in page
    assert not (book / "_build" / "html" / "_static" / "mathjax").exists()
