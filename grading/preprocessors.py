"""nbgrader preprocessors of this course (configured in ``nbgrader_config.py``)."""

from __future__ import annotations

import itertools
import re

from nbconvert.exporters.exporter import ResourcesDict
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import OverwriteCells


def _index_of(nb: NotebookNode, grade_id: str) -> int | None:
    for index, cell in enumerate(nb.cells):
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            return index
    return None


def _cell_id(wanted: str, nb: NotebookNode) -> str:
    """``wanted`` made a valid nbformat cell id that no cell of ``nb`` has yet."""
    base = re.sub(r"[^A-Za-z0-9_-]", "-", wanted)[:56]
    taken = {cell.get("id") for cell in nb.cells}
    candidates = (base if n == 0 else f"{base}-{n}" for n in itertools.count())
    return next(candidate for candidate in candidates if candidate not in taken)


class OverwriteCellsInOrder(OverwriteCells):
    """nbgrader's :class:`~nbgrader.preprocessors.OverwriteCells`, but a deleted grade cell is
    put back after the nearest earlier source cell that the hand-in still has.

    nbgrader 0.9.6 puts a missing grade cell back after the source cell just before it, and
    only finds that cell if it is a grade or solution cell: where it is a read-only cell (such
    as the question above a written answer), autograding the hand-in fails with a ``KeyError``.
    The cell put back also gets a cell id (``restored-<grade_id>``), which nbgrader leaves out.
    """

    def add_missing_grade_cells(
        self, nb: NotebookNode, resources: ResourcesDict
    ) -> tuple[NotebookNode, ResourcesDict]:
        source_nb = self.gradebook.find_notebook(self.notebook_id, self.assignment_id)
        source_cells = {cell.name: cell for cell in source_nb.source_cells}
        order = list(source_cells)  # the source notebook's order, as nbgrader assumes too
        grade_cells = {cell.name: cell for cell in source_nb.grade_cells}
        solution_ids = {cell.name for cell in source_nb.solution_cells}
        for position, name in enumerate(order):
            if name not in grade_cells or _index_of(nb, name) is not None:
                continue
            self.log.warning("Missing grade cell %s encountered, adding to notebook", name)
            cell = self.missing_cell_transform(
                source_cells[name], grade_cells[name].max_score, is_solution=name in solution_ids
            )
            if (nb.nbformat, nb.nbformat_minor) >= (4, 5):
                # nbgrader leaves the id out, and nbformat would make up a random one.
                cell["id"] = _cell_id(f"restored-{name}", nb)
            earlier = (_index_of(nb, other) for other in reversed(order[:position]))
            after = next((index for index in earlier if index is not None), -1)
            nb.cells.insert(after + 1, cell)
        return nb, resources
