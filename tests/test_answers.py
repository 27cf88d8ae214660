"""Grading accuracy: the autograder takes points from every wrong answer in a corpus of
students' answers and gives full marks to every right one.

``tests/answers/<assignment>/<name>.py`` holds one answer. Its first line says whether it is
right or wrong and what the student did; a wrong answer's second line names a word or phrase
that the feedback on its task must contain; each ``# %% <grade_id>`` line starts the code that
replaces the model answer in that answer cell of ``solutions/<assignment>/``::

    # wrong, visibly: the sum over the batch where the task asks for the mean
    # feedback: mean loss
    # %% bce
    def binary_cross_entropy(logits, targets):
        ...

A wrong answer must lose points on its task: the test cell ``<grade_id>-tests`` of a cell it
replaces, and the message of that failing test, as the student's feedback (``summary.txt``)
shows it, must name the mistake with the phrase. "wrong, visibly" says more: the visible tests
catch it, so the student sees the failure before handing in (it fails before the hidden tests
run). A right answer must earn full marks on every test that reads what it wrote.

A cheat (``# cheat on <wrong answer>: ...``) adds its code to the cells of a wrong answer of the
corpus, to change what the tests use (``torch.allclose``, ``Tensor.__eq__``, ``builtins``,
``sys.modules``): both checks of :mod:`grading.tamper` must catch it, the reading of the cells
before they run and the guard in the kernel, and it must earn no point on its task that its
wrong answer does not. It changes every test that runs after it, so it has a hand-in of its own.

Each hand-in is a real kernel running a whole notebook, so answers share hand-ins where they
cannot disturb each other: answers go together when no autograded test reads what two of them
wrote. What a test reads is found from the names the notebook's cells bind and read
(:func:`influence`); every cell that no answer replaces keeps the model answer. The whole corpus
is graded as one class of the real grader (:func:`grading.autograde`, two hand-ins at a time,
sharing the course models), in a temporary copy of the course, and gets its feedback.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import html
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest
from nbformat import NotebookNode
from nbgrader.preprocessors import ClearSolutions

# The lines of the hidden tests, as tests/test_grading.py finds them in the feedback.
from test_grading import hidden_lines

from grading import (
    Course,
    GradeRow,
    Limits,
    autograde,
    collect_grades,
    release_all,
    write_feedback,
)
from grading.tamper import scan

REPO = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).resolve().parent / "answers"
COURSE = Course(REPO)
ASSIGNMENTS = COURSE.source_assignments()
#: The least a corpus holds per assignment.
MIN_WRONG, MIN_RIGHT = 8, 3
#: Two hand-ins at a time, as on a small machine; limits that a solved exercise stays within.
JOBS = 2
LIMITS = {"cell_timeout": 300, "notebook_timeout": 900, "memory_mb": 8192, "cpu_seconds": 900}

HEADER = re.compile(
    r"# (?P<verdict>right|wrong|cheat)(?P<visibly>, visibly)?(?: on (?P<base>\S+))?: (?P<what>\S.*)"
)
FEEDBACK = re.compile(r"# feedback: (?P<phrase>\S.*)")
CELL = re.compile(r"# %% (?P<grade_id>\S+)")
HIDDEN = "BEGIN HIDDEN TESTS"

pytestmark = [
    pytest.mark.grading,
    # nbgrader's own noise, as in tests/test_grading.py.
    pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning"),
    pytest.mark.filterwarnings("ignore::nbformat.warnings.MissingIDFieldWarning"),
]


# --- The corpus -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One answer of the corpus: the code it puts into answer cells, and what it must score."""

    assignment: str
    name: str
    right: bool
    visibly: bool  # a wrong answer that the visible tests catch
    what: str
    cells: dict[str, str]  # grade_id -> the code replacing the model answer
    feedback: str = ""  # a wrong answer's: what the feedback on its task must say
    base: str | None = None  # a cheat: the wrong answer whose cells it adds its code to

    cheat = property(lambda self: self.base is not None)

    @property
    def key(self) -> str:
        return f"{self.assignment}/{self.name}"

    @property
    def tests(self) -> list[str]:
        """The test cells of its task: ``<grade_id>-tests`` of each cell it replaces."""
        return [f"{grade_id}-tests" for grade_id in self.cells]


def read_answer(path: Path) -> Answer:
    """Parse an answer file; a clear error names the file and what is wrong with it."""
    lines = path.read_text(encoding="utf-8").split("\n")
    header = HEADER.fullmatch(lines[0])
    if header is None:
        raise ValueError(
            f"{path}: the first line must be '# right: <what the student did>' or "
            f"'# wrong: ...' (or '# wrong, visibly: ...', or '# cheat on <wrong answer>: ...'), "
            f"not {lines[0]!r}"
        )
    if header["verdict"] != "wrong" and header["visibly"]:
        raise ValueError(f"{path}: 'visibly' describes a wrong answer only")
    if (header["verdict"] == "cheat") != bool(header["base"]):
        raise ValueError(
            f"{path}: a cheat, and only a cheat, names the wrong answer it adds its code to: "
            "'# cheat on <wrong answer>: <what the student did>'"
        )
    feedback = FEEDBACK.fullmatch(lines[1]) if len(lines) > 1 else None
    if (header["verdict"] == "wrong") != (feedback is not None):
        raise ValueError(
            f"{path}: the second line must be '# feedback: <what the feedback on the task must "
            "say>' for a wrong answer, e.g. '# feedback: row-major', and only for a wrong answer"
        )
    cells: dict[str, list[str]] = {}
    current = None
    for number, line in enumerate(lines[1 + bool(feedback) :], start=2 + bool(feedback)):
        marker = CELL.fullmatch(line)
        if marker:
            current = cells.setdefault(marker["grade_id"], [])
        elif current is not None:
            current.append(line)
        elif line.strip():
            raise ValueError(f"{path}, line {number}: code before the first '# %% <grade_id>'")
    if not cells:
        raise ValueError(f"{path}: no '# %% <grade_id>' cell: the answer changes nothing")
    return Answer(
        assignment=path.parent.name,
        name=path.stem,
        right=header["verdict"] == "right",
        visibly=bool(header["visibly"]),
        what=header["what"],
        cells={grade_id: "\n".join(code).strip("\n") for grade_id, code in cells.items()},
        feedback=feedback["phrase"] if feedback else "",
        base=header["base"],
    )


def read_corpus(assignment: str) -> list[Answer]:
    """The answers of ``assignment``, each cheat's code added to that of its wrong answer."""
    answers = [read_answer(path) for path in sorted((CORPUS / assignment).glob("*.py"))]
    named = {answer.name: answer for answer in answers}
    return [on_base(answer, named) if answer.cheat else answer for answer in answers]


def on_base(cheat: Answer, named: dict[str, Answer]) -> Answer:
    """``cheat`` with the code of the wrong answer it names before its own, cell by cell."""
    path = CORPUS / cheat.assignment / f"{cheat.name}.py"
    base = named.get(cheat.base or "")
    if base is None or base.right or base.cheat:
        raise ValueError(f"{path}: '# cheat on {cheat.base}' names no wrong answer in "
                         f"{path.parent}")  # fmt: skip
    if set(cheat.cells) - set(base.cells):
        raise ValueError(f"{path}: {base.name} replaces no cell "
                         f"{sorted(set(cheat.cells) - set(base.cells))}")  # fmt: skip
    cells = {gid: "\n\n".join(filter(None, [code, cheat.cells.get(gid)]))
             for gid, code in base.cells.items()}  # fmt: skip
    return dataclasses.replace(cheat, cells=cells)


# --- What a test reads: names bound and read by the notebook's cells -------------------------


def _scan(node: ast.AST, bound: set[str], read: set[str]) -> None:
    """Add the names ``node`` binds in its scope to ``bound`` and those it reads to ``read``;
    a function's or class's body reads the names it does not bind itself (its globals)."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
        if not isinstance(node, ast.Lambda):
            bound.add(node.name)
        arguments = getattr(node, "args", None)
        outer = [*getattr(node, "decorator_list", []), *getattr(node, "bases", [])]
        outer += [keyword.value for keyword in getattr(node, "keywords", [])]
        own: set[str] = set()
        if arguments is not None:
            outer += [d for d in [*arguments.defaults, *arguments.kw_defaults] if d is not None]
            for argument in ast.walk(arguments):
                if isinstance(argument, ast.arg):
                    own.add(argument.arg)
                    outer += [argument.annotation] if argument.annotation else []
        outer += [node.returns] if getattr(node, "returns", None) else []
        for child in outer:
            _scan(child, bound, read)
        inner: set[str] = set()
        for child in node.body if isinstance(node.body, list) else [node.body]:
            _scan(child, own, inner)
        read |= inner - own
    elif isinstance(node, ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp):
        # A comprehension's variables are its own: they neither leak into the cell nor read
        # the cell's names of the same spelling.
        own, inner = set(), set()
        for child in ast.iter_child_nodes(node):
            _scan(child, own, inner)
        read |= inner - own
    elif isinstance(node, ast.Name):
        (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
    elif isinstance(node, ast.Import | ast.ImportFrom):
        bound |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
    else:
        for child in ast.iter_child_nodes(node):
            _scan(child, bound, read)


def _targets(node: ast.AST, names: _Names) -> None:
    """Bind the names an assignment target binds; a subscript or attribute target reads."""
    if isinstance(node, ast.Name):
        names.bind(node.id)
    elif isinstance(node, ast.Tuple | ast.List | ast.Starred):
        for child in ast.iter_child_nodes(node):
            _targets(child, names)
    else:
        names.read(node)


@dataclass
class _Names:
    """What a block of statements binds (anywhere) and reads before binding it surely."""

    bound: set[str] = field(default_factory=set)
    free: set[str] = field(default_factory=set)
    surely: set[str] = field(default_factory=set)  # bound on every path so far

    def bind(self, name: str) -> None:
        self.bound.add(name)
        self.surely.add(name)

    def read(self, *nodes: ast.AST | None) -> None:
        for node in nodes:
            if node is not None:
                binds: set[str] = set()
                reads: set[str] = set()
                _scan(node, binds, reads)
                self.free |= reads - self.surely
                for name in binds:
                    self.bind(name)

    def branch(self, statements: list[ast.stmt], *names: str) -> None:
        """A block that may not run (or runs with ``names`` bound): what it binds is bound,
        but not surely afterwards."""
        inner = _Names(self.bound, self.free, self.surely | set(names))
        inner.block(statements)

    def block(self, statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, ast.For | ast.AsyncFor):
                self.read(node.iter)
                loop = _Names()
                _targets(node.target, loop)
                self.bound |= loop.bound
                self.branch(node.body, *loop.bound)
                self.branch(node.orelse)
            elif isinstance(node, ast.With | ast.AsyncWith):
                for item in node.items:
                    self.read(item.context_expr)
                    if item.optional_vars is not None:
                        _targets(item.optional_vars, self)
                self.block(node.body)
            elif isinstance(node, ast.If | ast.While):
                self.read(node.test)
                self.branch(node.body)
                self.branch(node.orelse)
            elif isinstance(node, ast.Try):
                self.branch(node.body)
                for handler in node.handlers:
                    self.read(handler.type)
                    self.branch(handler.body, *([handler.name] if handler.name else []))
                self.branch(node.orelse)
                self.block(node.finalbody)
            elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
                self.read(node.value)
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if isinstance(node, ast.AugAssign):
                    self.read(
                        ast.Name(node.target.id, ast.Load())
                        if isinstance(node.target, ast.Name)
                        else node.target
                    )
                for target in targets:
                    _targets(target, self)
            else:
                self.read(node)


def names(code: str) -> tuple[set[str], set[str]]:
    """(names a cell binds, names it reads that it has not surely bound before). A cell that
    does not parse binds and reads nothing (it fails when run)."""
    try:
        statements = ast.parse(code).body
    except SyntaxError:
        return set(), set()
    found = _Names()
    found.block(statements)
    return found.bound, found.free


@dataclass
class Notebook:
    """An assignment's source notebook: its code cells with the model answers."""

    assignment: str
    name: str  # file name
    source: NotebookNode
    model: dict[str, str]  # grade_id of each answer cell -> the model answer's code
    tests: list[str]  # grade_ids of the autograded test cells

    @classmethod
    def read(cls, course: Course, assignment: str) -> Notebook:
        (path,) = course.source_notebooks(assignment)  # one notebook per exercise
        source = nbformat.read(path, as_version=4)
        stubs = ClearSolutions(config=course.config())
        marks = (stubs.begin_solution_delimeter, stubs.end_solution_delimeter)
        model = {
            _grade_id(cell): "\n".join(
                line for line in cell.source.split("\n") if not any(m in line for m in marks)
            )
            for cell in source.cells
            if _nbgrader(cell).get("solution") and cell.cell_type == "code"
        }
        tests = [
            _grade_id(cell)
            for cell in source.cells
            if _nbgrader(cell).get("grade") and not _nbgrader(cell).get("solution")
        ]
        return cls(assignment, path.name, source, model, tests)

    def code(self, answers: Iterable[Answer]) -> list[tuple[str | None, str]]:
        """(grade_id, code) of every code cell, with the answers' code in their cells."""
        replaced = {gid: code for answer in answers for gid, code in answer.cells.items()}
        return [
            (_grade_id(cell), replaced.get(_grade_id(cell), cell.source))
            for cell in self.source.cells
            if cell.cell_type == "code"
        ]

    def influence(self, answer: Answer, together: Iterable[Answer]) -> set[str]:
        """The autograded tests that read what ``answer`` wrote, in a hand-in of the answers
        ``together`` (``answer`` among them): a test reads it if it reads a name that one of
        the answer's cells binds (or the model answer of that cell binds), directly or through
        the names of the cells in between."""
        tainted: set[str] = set()
        reached: set[str] = set()
        for grade_id, code in self.code(together):
            bound, read = names(code)
            if grade_id in answer.cells:
                tainted |= bound | names(self.model[grade_id])[0]
            elif read & tainted:
                tainted |= bound
                if grade_id in self.tests:
                    reached.add(grade_id)
        return reached


def _nbgrader(cell: NotebookNode) -> dict:
    return cell.metadata.get("nbgrader", {})


def _grade_id(cell: NotebookNode) -> str | None:
    return _nbgrader(cell).get("grade_id")


# --- Hand-ins: answers that cannot disturb each other share one -----------------------------


@dataclass
class HandIn:
    student: str
    notebook: Notebook
    answers: list[Answer] = field(default_factory=list)

    def reads(self) -> dict[str, set[str]]:
        """answer key -> the tests that read what it wrote, in this hand-in."""
        return {a.key: self.notebook.influence(a, self.answers) for a in self.answers}

    def admits(self, answer: Answer) -> bool:
        """Whether ``answer`` can join: no cell written twice, and no test reading a wrong
        answer and any other (its failure must be that answer's; a test that reads right
        answers only must pass, whichever of them it reads). A cheat goes alone."""
        if answer.cheat or any(other.cheat for other in self.answers):
            return False
        if any(set(answer.cells) & set(other.cells) for other in self.answers):
            return False
        together = [*self.answers, answer]
        reads = HandIn(self.student, self.notebook, together).reads()
        readers: dict[str, list[Answer]] = {}
        for other in together:
            for test in reads[other.key]:
                readers.setdefault(test, []).append(other)
        return all(len(group) == 1 or all(a.right for a in group) for group in readers.values())

    def build(self, released: NotebookNode) -> NotebookNode:
        """The released exercise, every answer cell filled with its answer or the model's."""
        code = dict(self.notebook.model)
        for answer in self.answers:
            code.update(answer.cells)
        nb = copy.deepcopy(released)
        for cell in nb.cells:
            if _grade_id(cell) in code:
                cell.source = code[_grade_id(cell)]
        return nb


def pack(notebook: Notebook, answers: list[Answer]) -> list[HandIn]:
    """Put ``answers`` into few hand-ins, as the rule of :meth:`HandIn.admits` allows: first
    fit, the answers that clash with most others first (the same corpus packs the same)."""

    def clashes(answer: Answer) -> int:
        alone = HandIn("", notebook, [answer])
        return sum(not alone.admits(other) for other in answers if other is not answer)

    degree = {answer.key: clashes(answer) for answer in answers}
    handins: list[HandIn] = []
    for answer in sorted(answers, key=lambda a: (-degree[a.key], a.name)):
        place = next((h for h in handins if h.admits(answer)), None)
        if place is None:
            place = HandIn(f"{notebook.assignment[:2]}-{len(handins) + 1:02d}", notebook)
            handins.append(place)
        place.answers.append(answer)
    return handins


# --- Grading the corpus --------------------------------------------------------------------


@dataclass
class Graded:
    course: Course
    failures: list[str]
    handins: list[HandIn]
    #: answer key -> (its hand-in, the score row of that hand-in)
    rows: dict[str, tuple[HandIn, GradeRow | None]]


def corpus() -> dict[str, list[Answer]]:
    return {assignment: read_corpus(assignment) for assignment in ASSIGNMENTS}


def grade(root: Path, answers: dict[str, list[Answer]]) -> Graded:
    """Grade ``answers`` (assignment -> its answers) as one class in a copy of the course at
    ``root``."""
    shutil.copy(REPO / "nbgrader_config.py", root / "nbgrader_config.py")
    shutil.copytree(REPO / "solutions", root / "solutions")
    course = Course(root)
    release_all(course)
    handins: list[HandIn] = []
    for assignment, some in answers.items():
        notebook = Notebook.read(course, assignment)
        released = nbformat.read(course.release_dir / assignment / notebook.name, as_version=4)
        for handin in pack(notebook, some):
            folder = course.submitted_dir / handin.student / assignment
            folder.mkdir(parents=True)
            nbformat.write(handin.build(released), folder / notebook.name)
            handins.append(handin)
    result = autograde(course, jobs=JOBS, limits=Limits.of(course, **LIMITS), progress=False)
    write_feedback(course, [(handin.student, handin.notebook.assignment) for handin in handins])
    scores = {(row.student, row.assignment): row for row in collect_grades(course)}
    rows = {
        answer.key: (handin, scores.get((handin.student, handin.notebook.assignment)))
        for handin in handins
        for answer in handin.answers
    }
    return Graded(course, result.failures, handins, rows)


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> Graded:
    return grade(tmp_path_factory.mktemp("answers"), corpus())


def _traceback_line(outputs: list) -> int | None:
    """The line of the test cell where its error was raised (from IPython's traceback)."""
    for output in outputs:
        if output.get("output_type") == "error":
            text = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(output.get("traceback", [])))
            found = re.search(r"Cell In\[\d+\], line (\d+)", text)
            return int(found.group(1)) if found else None
    return None


def caught_visibly(course: Course, handin: HandIn, test: str) -> bool:
    """Whether ``test`` failed in the hand-in before reaching its hidden tests."""
    path = course.autograded_dir / handin.student / handin.notebook.assignment
    ran = nbformat.read(path / handin.notebook.name, as_version=4)
    (cell,) = [c for c in ran.cells if _grade_id(c) == test]
    line = _traceback_line(cell.outputs)
    lines = cell.source.split("\n")
    hidden = next((i + 1 for i, text in enumerate(lines) if HIDDEN in text), len(lines) + 1)
    return line is not None and line < hidden


ANSWERS = [answer for answers in corpus().values() for answer in answers if not answer.cheat]
CHEATS = [answer for answers in corpus().values() for answer in answers if answer.cheat]


@pytest.mark.parametrize("answer", ANSWERS, ids=[answer.key for answer in ANSWERS])
def test_answer_scores_as_it_deserves(graded: Graded, answer: Answer):
    handin, row = graded.rows[answer.key]
    assert row is not None, f"{handin.student} has no score: {graded.failures}"
    assert row.reasons == (), f"{handin.student} did not run cleanly: {row.reasons}"
    reads = handin.reads()[answer.key]
    scores = {test: row.cell(test) for test in reads}
    lost = {
        test: f"{s.score:g}/{s.max_score:g}" for test, s in scores.items() if s.score < s.max_score
    }
    together = ", ".join(a.name for a in handin.answers if a is not answer) or "nothing else"
    where = f"{answer.key} ({answer.what}), graded as {handin.student} with {together}"
    if answer.right:
        assert not lost, f"the right answer {where} loses points on {lost}"
        return
    own = [test for test in answer.tests if test in lost]
    assert own, f"the wrong answer {where} keeps full marks on {answer.tests}"
    if answer.visibly:
        visible = [test for test in own if caught_visibly(graded.course, handin, test)]
        assert visible, (
            f"the visible tests miss the wrong answer {where}: it fails {own} only in hidden tests"
        )


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_tests_reading_no_wrong_answer_earn_full_marks(graded: Graded, assignment: str):
    """The model answers and the right ones pass every test they alone feed: each test of the
    assignment, in every hand-in where no wrong answer reaches it (at least one)."""
    unread: set[str] = set()
    lost = []
    for handin in graded.handins:
        if handin.notebook.assignment != assignment or handin.answers[0].cheat:
            continue
        _, row = graded.rows[handin.answers[0].key]
        assert row is not None, f"{handin.student} has no score: {graded.failures}"
        reads = handin.reads()
        wrong = set().union(*(reads[a.key] for a in handin.answers if not a.right))
        for test in set(handin.notebook.tests) - wrong:
            unread.add(test)
            score = row.cell(test)
            if score.score < score.max_score:
                names = ", ".join(a.name for a in handin.answers)
                lost.append(f"{test} in {handin.student} ({names}): {score.score:g}")
    notebook = Notebook.read(graded.course, assignment)
    assert set(notebook.tests) <= unread, f"no hand-in without a wrong answer in {notebook.tests}"
    assert not lost, f"tests that read no wrong answer lose points: {lost}"


@pytest.mark.parametrize("cheat", CHEATS, ids=[cheat.key for cheat in CHEATS])
def test_cheat_is_caught_and_earns_nothing(graded: Graded, cheat: Answer):
    """Both checks name the change, the scan with the cell and the line; by the course's
    setting (review) the notebook's tests are left to a person; and no test of the task scores
    more than it does for the wrong answer alone."""
    handin, row = graded.rows[cheat.key]
    _, alone = graded.rows[f"{cheat.assignment}/{cheat.base}"]
    assert row is not None and alone is not None, graded.failures
    where = f"{cheat.key} ({cheat.what}), graded as {handin.student}"
    scan = [reason for reason in row.reasons if "changes the tests' tools: " in reason]
    guard = [reason for reason in row.reasons if "the hand-in replaced " in reason]
    assert scan and guard, f"{where}: the scan found {scan}, the guard {guard}"
    cells = [f"({grade_id}), line " for grade_id in cheat.cells]
    assert any(cell in reason for reason in scan for cell in cells), scan
    tests = {f"{handin.notebook.name.removesuffix('.ipynb')}/{t}" for t in handin.notebook.tests}
    assert tests <= set(row.needs_manual_grade), f"{where}: not left to a person: {row}"
    more = {
        test: f"{row.cell(test).score:g} > {alone.cell(test).score:g}"
        for test in cheat.tests
        if row.cell(test).score > alone.cell(test).score
    }
    assert not more, f"{where} earns more than its wrong answer {cheat.base} on {more}"


def test_grader_graded_every_hand_in(graded: Graded):
    assert not graded.failures, "\n\n".join(graded.failures)
    assert all(row is not None for _, row in graded.rows.values())


# --- The feedback the student gets -----------------------------------------------------------

WRONG = [answer for answer in ANSWERS if not answer.right]


def feedback_on(graded: Graded, answer: Answer) -> str:
    """What the hand-in's ``summary.txt`` says on the answer's task: the line of each of its
    test cells (``notebook/grade_id: score status``) and the message lines below it."""
    handin, _ = graded.rows[answer.key]
    path = graded.course.feedback_dir / handin.student / answer.assignment / "summary.txt"
    said, ours = [], False
    for line in path.read_text(encoding="utf-8").split("\n"):
        cell = re.match(r"  \S+/(?P<grade_id>\S+): ", line)
        ours = cell["grade_id"] in answer.tests if cell else ours and line.startswith("    ")
        said += [line] if ours else []
    return "\n".join(said)


@pytest.mark.parametrize("answer", WRONG, ids=[answer.key for answer in WRONG])
def test_feedback_names_the_mistake(graded: Graded, answer: Answer):
    said = feedback_on(graded, answer)
    assert answer.feedback.lower() in said.lower(), (
        f"the feedback on {answer.key} ({answer.what}) does not say {answer.feedback!r}:\n{said}"
    )


def _page_text(folder: Path) -> str:
    """The text a student reads in the hand-in's HTML feedback of the notebook (tags cut)."""
    (page,) = [path for path in folder.glob("*.html") if not path.name.startswith("summary")]
    return html.unescape(re.sub(r"<[^>]*>", "", page.read_text(encoding="utf-8")))


def test_feedback_shows_a_failing_hidden_tests_message_not_its_code(graded: Graded):
    """Every hand-in where a wrong answer fails a hidden test only: the HTML feedback shows
    that test's message (what it checked, what the answer gave) and no line of hidden test."""
    shown = []
    for answer in WRONG:
        handin, _ = graded.rows[answer.key]
        assignment, name = handin.notebook.assignment, handin.notebook.name
        ran = nbformat.read(graded.course.autograded_dir / handin.student / assignment / name, 4)
        text = _page_text(graded.course.feedback_dir / handin.student / assignment)
        leaked = [line for line in hidden_lines(graded.course, assignment) if line in text]
        assert not leaked, f"the feedback of {handin.student} shows hidden test lines: {leaked[:3]}"
        for test in answer.tests:
            (cell,) = [c for c in ran.cells if _grade_id(c) == test]
            raised = [out for out in cell.outputs if out.output_type == "error"]
            if raised and not caught_visibly(graded.course, handin, test):
                message = raised[-1].evalue.strip()
                assert message and message in text, (
                    f"the feedback of {handin.student} lacks the message of {test}'s hidden test "
                    f"that {answer.key} fails: {message!r}"
                )
                shown.append(answer.key)
    assert shown, "no wrong answer of the corpus fails a hidden test"


# --- The corpus itself (no notebook runs) ----------------------------------------------------


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_corpus_is_large_enough_and_well_formed(assignment: str):
    answers = read_corpus(assignment)
    wrong = [a for a in answers if not a.right and not a.cheat]
    right = [a for a in answers if a.right]
    assert len(wrong) >= MIN_WRONG and len(right) >= MIN_RIGHT, (
        f"tests/answers/{assignment}/ holds {len(wrong)} wrong and {len(right)} right answers; "
        f"it needs at least {MIN_WRONG} and {MIN_RIGHT}"
    )
    notebook = Notebook.read(COURSE, assignment)
    for answer in answers:
        unknown = sorted(set(answer.cells) - set(notebook.model))
        assert not unknown, f"{answer.key} replaces {unknown}, which are no answer cells"
        if not answer.right:
            missing = [test for test in answer.tests if test not in notebook.tests]
            assert not missing, f"{answer.key}: its task has no test cell {missing}"
            reads = notebook.influence(answer, [answer])
            assert set(answer.tests) & reads, f"{answer.key}: {answer.tests} never read it"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("# wrongly: x\n# feedback: y\n# %% bce\npass", "the first line must be"),
        ("# right, visibly: x\n# %% bce\npass", "'visibly' describes a wrong answer only"),
        ("# wrong: x\n# %% bce\npass", "the second line must be '# feedback: "),
        ("# right: x\n# feedback: y\n# %% bce\npass", "and only for a wrong answer"),
        ("# wrong: x\n# feedback: y\npass\n# %% bce", ", line 3: code before the first"),
        ("# wrong: x\n# feedback: y\n", "no '# %% <grade_id>' cell"),
        ("# cheat: x\n# %% bce\npass", "a cheat, and only a cheat, names the wrong answer"),
        ("# right on bce-builtin: x\n# %% bce\npass", "a cheat, and only a cheat, names"),
        ("# cheat on x, visibly: y\n# %% bce\npass", "the first line must be"),
    ],
)
def test_a_malformed_answer_is_refused_with_what_is_wrong(tmp_path: Path, text: str, problem: str):
    path = tmp_path / "01_linear_classifiers" / "bad.py"
    path.parent.mkdir()
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError) as refused:
        read_answer(path)
    assert str(refused.value).startswith(str(path)) and problem in str(refused.value)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_scan_finds_the_cheats_and_nothing_else(assignment: str):
    """The grader's reading of the student's cells (:func:`grading.tamper.scan`), before any
    kernel: every cheat is found, no right or wrong answer is."""
    notebook = Notebook.read(COURSE, assignment)
    for answer in read_corpus(assignment):
        found = scan(HandIn("", notebook, [answer]).build(notebook.source), notebook.source)
        assert bool(found) == answer.cheat, f"{answer.key} ({answer.what}): {found}"


def most_clashing(notebook: Notebook, answers: list[Answer]) -> int:
    """The size of the largest group of answers of which no two may share a hand-in (the
    answers of one cell, a test's wrong readers, the cheats): no packing needs fewer
    hand-ins. Clashes are pairwise, as :meth:`HandIn.admits` decides them."""
    clash = {
        a.key: {
            b.key
            for b in answers
            if b is not a
            and not (HandIn("", notebook, [a]).admits(b) and HandIn("", notebook, [b]).admits(a))
        }
        for a in answers
    }
    best = 0

    def grow(size: int, candidates: set[str]) -> None:  # Bron and Kerbosch, without pivots
        nonlocal best
        best = max(best, size)
        for key in sorted(candidates):
            grow(size + 1, candidates & clash[key])
            candidates = candidates - {key}

    grow(0, set(clash))
    return best


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_hand_ins_are_as_few_as_the_corpus_allows(assignment: str):
    """Each hand-in runs a whole notebook: as many hand-ins as the largest group of answers
    that cannot share one (the cell with the most answers, or the answers that its tests read
    together), and no more."""
    answers = read_corpus(assignment)
    notebook = Notebook.read(COURSE, assignment)
    per_cell: dict[str, int] = {}
    for answer in (answer for answer in answers if not answer.cheat):
        for grade_id in answer.cells:
            per_cell[grade_id] = per_cell.get(grade_id, 0) + 1
    cheats = sum(answer.cheat for answer in answers)
    bound = most_clashing(notebook, answers)
    assert bound >= max(per_cell.values()) + cheats
    handins = pack(notebook, answers)
    assert len(handins) == bound, [[a.name for a in h.answers] for h in handins]


def accuracy_lines() -> list[str]:
    """The README's lines on grading accuracy, one per exercise, as the corpus makes them."""
    lines = []
    for number, assignment in enumerate(ASSIGNMENTS, start=1):
        answers = read_corpus(assignment)
        wrong = sum(not a.right and not a.cheat for a in answers)
        visibly = sum(a.visibly for a in answers)
        right = sum(a.right for a in answers)
        lines.append(
            f"- Exercise {number} (`{assignment}`): {wrong} of {wrong} wrong answers lose "
            f"points on their task ({visibly} caught by the visible tests), {right} of {right} "
            "right answers earn full marks."
        )
    cheats = [
        cheat for assignment in ASSIGNMENTS for cheat in read_corpus(assignment) if cheat.cheat
    ]
    lines.append(
        f"- Cheats: {len(cheats)} of {len(cheats)} hand-ins that change the tests' tools are "
        "caught by both checks, and earn no point that their wrong answer does not."
    )
    return lines


def test_readme_states_the_grading_accuracy():
    """The README's accuracy lines count the corpus; the tests above make them true."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    missing = [line for line in accuracy_lines() if line not in readme]
    assert not missing, "README.md's grading accuracy is out of date; expected:\n" + "\n".join(
        missing
    )
