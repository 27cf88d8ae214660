"""The book reads and executes only the pages of its table of contents.

A repository holds more notebooks than the book's: those of tox or nox environments, a
second virtual environment (``.venv-3.12/``), drafts. ``make book`` must neither read nor
execute them, so that a failing one cannot break the build. Checked on a one-page book with
the course's own ``_config.yml`` and extensions, surrounded by notebooks that fail and leave
a mark when they run.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

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


def test_only_pages_of_the_toc_are_read_or_executed(tmp_path: Path) -> None:
    book = tmp_path / "book"
    book.mkdir()
    for name in ("_config.yml", "references.bib"):
        shutil.copy(REPO / name, book / name)
    shutil.copytree(REPO / "_ext", book / "_ext")
    (book / "_toc.yml").write_text("format: jb-book\nroot: intro\n", encoding="utf-8")
    (book / "intro.md").write_text("# The only page\n\nOf this book.\n", encoding="utf-8")
    markers = {folder: tmp_path / f"ran-{index}" for index, folder in enumerate(DECOY_FOLDERS)}
    for folder, marker in markers.items():
        _decoy(book / folder, marker)

    command = [str(JUPYTER_BOOK), "build", "-W", "-n", "--keep-going", str(book)]
    result = subprocess.run(command, cwd=book, capture_output=True, text=True, check=False)

    output = (result.stdout + result.stderr)[-4000:]
    assert result.returncode == 0, f"a page outside _toc.yml broke the build:\n{output}"
    ran = [folder for folder, marker in markers.items() if marker.exists()]
    assert not ran, f"make book executed notebooks outside _toc.yml, in {ran}"
    built = sorted(str(p.relative_to(book)) for p in (book / "_build" / "html").rglob("decoy*"))
    assert not built, f"pages outside _toc.yml were published: {built}"
    assert (book / "_build" / "html" / "intro.html").is_file()
