"""nbgrader preprocessors of this course (configured in ``nbgrader_config.py``)."""

from __future__ import annotations

import ast
import io
import itertools
import json
import re
import secrets
import time
import tokenize
from pathlib import Path

from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import ensure_async, run_sync
from nbconvert.exporters.exporter import ResourcesDict
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import ClearHiddenTests, Execute, OverwriteCells
from nbgrader.utils import is_grade, is_locked, is_solution
from traitlets import Float, Integer, Unicode

from . import tamper
from .course import describe_cell, grade_id
from .sandbox import describe_end


def _index_of(nb: NotebookNode, wanted: str) -> int | None:
    return next((index for index, cell in enumerate(nb.cells) if grade_id(cell) == wanted), None)


def _cell_id(wanted: str, nb: NotebookNode) -> str:
    """``wanted`` made a valid nbformat cell id that no cell of ``nb`` has yet."""
    base = re.sub(r"[^A-Za-z0-9_-]", "-", wanted)[:56]
    taken = {cell.get("id") for cell in nb.cells}
    candidates = (base if n == 0 else f"{base}-{n}" for n in itertools.count())
    return next(candidate for candidate in candidates if candidate not in taken)


class OverwriteCellsInOrder(OverwriteCells):
    """nbgrader's ``OverwriteCells``, putting a deleted grade cell back after the nearest earlier
    source cell that the hand-in still has (nbgrader 0.9.6 fails with a ``KeyError`` where the cell
    just before it is read-only, e.g. a written answer's question), with an id of its own."""

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


# --- Running a hand-in within limits ---------------------------------------------------------

#: ``ename`` of the error output put into the cell where a hand-in hit a limit or its kernel
#: died, and into every test cell that did not run because of it.
LIMIT_ERROR = "GradingLimit"
NOT_RUN_ERROR = "NotRun"
#: ``ename`` of the error output put into a test cell that ran after the hand-in replaced a tool
#: of the tests (:mod:`grading.tamper`).
TOOLS_ERROR = "ToolsReplaced"


class LimitHit(Exception):
    """A limit stopped the notebook; the message says which, in words."""


def _error(ename: str, evalue: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=[])


class LimitedExecute(Execute):
    """nbgrader's ``Execute`` within one hand-in's limits: ``timeout`` per cell and
    ``notebook_timeout`` in all. The first limit hit (a timeout, a ``MemoryError`` at the kernel's
    address-space limit, the kernel dying) stops the notebook: its cell gets an error output saying
    why, and every test cell after it one saying it did not run, so that ``SaveAutoGrades`` scores
    them 0; the reason goes to ``report_dir/<notebook>.json``. It also runs the guard of
    :mod:`grading.tamper` in the kernel, outside the notebook: a test cell that ran after the
    hand-in replaced a tool of the tests fails, and the first such change is reported too."""

    notebook_timeout = Float(float("inf"), help="Seconds the notebook may run.").tag(config=True)
    memory_mb = Integer(0, help="The kernel's memory limit, for messages.").tag(config=True)
    cpu_seconds = Integer(0, help="The kernel's CPU-time limit, for messages.").tag(config=True)
    status_file = Unicode("", help="The launcher's file of how the kernel ended.").tag(config=True)
    report_dir = Unicode("", help="Folder of why each notebook stopped.").tag(config=True)

    def _get_timeout(self, cell: NotebookNode | None) -> int | None:
        left = self._deadline - time.monotonic()
        self._notebook_bound = left < (self.timeout or float("inf"))
        return max(1, int(min(self.timeout or float("inf"), left)))

    def _time_limit(self) -> str:
        """The time limit that ended the current cell, in words."""
        if self._notebook_bound:
            return f"the notebook time limit ({self.notebook_timeout:g} s)"
        return f"the cell time limit ({self.timeout:g} s)"

    def preprocess_cell(self, cell, resources, index):
        self._index, where = index, describe_cell(self.nb, index)
        code = cell.cell_type == "code"
        if code and time.monotonic() >= self._deadline:
            raise LimitHit(f"the notebook time limit ({self.notebook_timeout:g} s) was reached "
                           f"before {where}")  # fmt: skip
        test = code and is_grade(cell) and not is_solution(cell)
        if code and not self._guard and (test or not (is_locked(cell) and grade_id(cell))):
            self._start_guard()  # before the first cell that is not the course's own
        before = self._changed() if test else []
        cell, resources = super().preprocess_cell(cell, resources, index)
        errors = [out.ename for out in cell.get("outputs", []) if out.output_type == "error"]
        if "CellTimeoutError" in errors:
            raise LimitHit(f"{self._time_limit()} was reached in {where}")
        if any(name.endswith("MemoryError") for name in errors):  # numpy's subclass too
            raise LimitHit(f"the memory limit ({self.memory_mb} MiB) was hit in {where}")
        changed = before or (self._changed() if test else [])
        if changed:
            names = tamper.listed(changed, ", ")
            cell.outputs.append(_error(TOOLS_ERROR, f"the hand-in replaced {names}"))
            when = f"before {where}" if before else f"while {where} ran"
            self._tampering = self._tampering or f"the hand-in replaced {names} {when}"
        return cell, resources

    async def _async_run_hidden(self, expression: str) -> dict:
        """Evaluate ``expression`` in the kernel, with no trace in the notebook or the
        kernel's history: its value's reply (``status``, and ``data`` or ``ename``)."""
        wanted = {"value": expression}
        msg_id = await ensure_async(
            self.kc.execute("", silent=True, store_history=False, user_expressions=wanted)
        )
        reply = await self.async_wait_for_reply(msg_id)
        return (reply or {}).get("content", {}).get("user_expressions", {}).get("value", {})

    _run_hidden = run_sync(_async_run_hidden)

    def _start_guard(self) -> None:
        """Record the tests' tools in the kernel, under a name of this run only."""
        self._guard = f"_{secrets.token_hex(8)}"
        reply = self._run_hidden(tamper.guard_code(self._guard))
        if reply.get("status") != "ok":
            what = f"{reply.get('ename')}: {reply.get('evalue')}"
            raise RuntimeError(f"the guard of the tests' tools did not start: {what}")

    def _changed(self) -> list[str]:
        """The tools of the tests that are not what the guard recorded."""
        reply = self._run_hidden(tamper.check_code(self._guard))
        try:
            text = ast.literal_eval(reply["data"]["text/plain"])
        except (KeyError, TypeError, ValueError, SyntaxError):
            text = None  # the check did not run: the hand-in changed the guard itself
        if not isinstance(text, str):
            return ["the grader's check"]
        return text.split("\n") if text else []

    def _kernel_end(self) -> str:
        """How the kernel ended, as the sandbox launcher saw it."""
        path = Path(self.status_file)
        for _ in range(50 if self.status_file else 0):  # written once the kernel is reaped
            if path.is_file():
                return describe_end(json.loads(path.read_text(encoding="utf-8")), self.cpu_seconds)
            time.sleep(0.1)
        return "the kernel died"

    def _execute(self, nb, resources, km):
        """nbgrader's run, with a kernel that dies before the hand-in's first cell started
        again, ``execute_retries`` times (nbgrader 0.9.6 defines that option but never reads
        it): no code of the hand-in has run yet, and two kernels starting at once can pick the
        same free port."""
        for retries_left in range(self.execute_retries, -1, -1):
            try:
                return super().preprocess(nb, resources, km)
            except RuntimeError as error:
                if self._index >= 0 or not retries_left or "died" not in str(error):
                    raise
                self.log.warning("The kernel died while starting (%s); starting another", error)
                if self.status_file:  # that kernel's end, not the next one's
                    Path(self.status_file).unlink(missing_ok=True)

    def preprocess(self, nb, resources=None, km=None):
        self._deadline = time.monotonic() + self.notebook_timeout
        self._index, self._notebook_bound, reason = -1, False, None
        self._guard, self._tampering = "", ""
        try:
            nb, resources = self._execute(nb, resources, km)
        except LimitHit as hit:
            reason = str(hit)
        except CellTimeoutError:  # the kernel did not even answer the interrupt
            reason = f"{self._time_limit()} was reached in {describe_cell(nb, self._index)}"
        except RuntimeError as error:  # also nbclient's "Kernel died before replying to ..."
            if self._index < 0 or not (isinstance(error, DeadKernelError) or "died" in str(error)):
                raise  # no code of the hand-in ran yet: the grader's own problem
            reason = f"{self._kernel_end()} in {describe_cell(nb, self._index)}"
        if reason:
            self.log.warning("Stopped: %s", reason)
            _mark_not_run(nb, self._index, reason)
        resources = resources if resources is not None else {}
        if self.report_dir:
            name = resources.get("nbgrader", {}).get("notebook", "notebook")
            report = {"reason": reason, "tampering": self._tampering}
            (Path(self.report_dir) / f"{name}.json").write_text(json.dumps(report))
        return nb, resources


def _mark_not_run(nb: NotebookNode, stopped_at: int, reason: str) -> None:
    """Error outputs for the cell where the notebook stopped and the tests that did not run."""
    for index, cell in enumerate(nb.cells):
        if index < stopped_at or cell.cell_type != "code":
            continue
        if index == stopped_at:
            cell.outputs.append(_error(LIMIT_ERROR, reason))
        elif is_grade(cell) and not is_solution(cell):
            cell.outputs = [_error(NOT_RUN_ERROR, f"not run: {reason}")]


# --- Feedback without the hidden tests -------------------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
#: Code shorter than this (``)``, ``else:``) says nothing about a hidden test.
_MIN_SECRET = 10
WITHHELD = "[output withheld: it quotes the grader's hidden tests]"
#: What a failing hidden test without a message of its own shows.
HIDDEN_FAILED = "a hidden test failed (its code is not shown)"
# f-strings are one STRING token up to Python 3.11, from 3.12 on FSTRING_START ... FSTRING_END.
_FSTRING = (getattr(tokenize, "FSTRING_START", -1), getattr(tokenize, "FSTRING_END", -1))


def _code_lines(source: str) -> list[str]:
    """The lines of ``source`` with each string literal replaced by a NUL character: the
    messages of a test's asserts are written for the student, its code is not."""
    lines, spans, depth, begin = source.split("\n"), [], 0, (0, 0)
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == _FSTRING[0]:
                begin, depth = token.start if depth == 0 else begin, depth + 1
            elif token.type == _FSTRING[1]:
                depth -= 1
                spans += [(begin, token.end)] if depth == 0 else []
            elif token.type == tokenize.STRING and depth == 0:
                spans.append((token.start, token.end))
    except (tokenize.TokenError, SyntaxError):  # not Python (a magic): every line is code
        return lines
    for (row, col), (end_row, end_col) in reversed(spans):
        joined = lines[row - 1][:col] + "\0" + lines[end_row - 1][end_col:]
        lines[row - 1 : end_row] = [joined] + [""] * (end_row - row)
    return lines


class HideHiddenTests(ClearHiddenTests):
    """nbgrader's :class:`~nbgrader.preprocessors.ClearHiddenTests` for feedback: cuts the hidden
    test regions out of the cells, and also withholds every output that quotes their code (a
    failing hidden assert's traceback, or a hand-in that printed them). A failing test's error
    keeps its message (the assert's, written for the student) when that quotes no code."""

    def preprocess(self, nb, resources):
        visible: set[str] = set()
        hidden: set[str] = set()
        for cell in nb.cells:
            inside = False
            for line, code in zip(cell.source.split("\n"), _code_lines(cell.source), strict=True):
                if self.begin_test_delimeter in line:
                    inside = True
                elif self.end_test_delimeter in line:
                    inside = False
                else:
                    (hidden if inside else visible).update(p.strip() for p in code.split("\0"))
        self._secrets = {code for code in hidden - visible if len(code) >= _MIN_SECRET}
        return super().preprocess(nb, resources)

    def _quotes_secret(self, text: str) -> bool:
        text = _ANSI.sub("", text)
        lines = [line.strip() for line in text.split("\n") if len(line.strip()) >= _MIN_SECRET]
        return any(
            secret in text or any(line in secret for line in lines) for secret in self._secrets
        )

    def preprocess_cell(self, cell, resources, cell_index):
        cell, resources = super().preprocess_cell(cell, resources, cell_index)
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                text = "\n".join([output.get("evalue", ""), *output.get("traceback", [])])
                if self._quotes_secret(text):
                    message = _ANSI.sub("", output.get("evalue", "")).strip()
                    if not message or self._quotes_secret(message):
                        message = HIDDEN_FAILED
                    output.evalue = message
                    output.traceback = [f"{output.ename}: {message}"]
            elif output.output_type == "stream":
                if self._quotes_secret(output.text):
                    output.text = WITHHELD + "\n"
            elif "data" in output:
                texts = [v if isinstance(v, str) else json.dumps(v) for v in output.data.values()]
                if any(self._quotes_secret(text) for text in texts):
                    output.data = {"text/plain": WITHHELD}
        return cell, resources
