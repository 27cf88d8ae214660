"""A hand-in that changes the tests' tools (grading/tamper.py): what the scan of the student's
cells finds and what it leaves alone, the guard's record and check (run here, in this process,
as it runs in a hand-in's kernel), the course's setting, and a class graded with "zero".
tests/test_answers.py grades the corpus of cheats with the real grader and its default, and
holds every right and wrong answer of the corpus to no finding at all."""

from __future__ import annotations

import copy
import shutil
import sys
import types
from pathlib import Path

import nbformat
import pytest
import torch
from nbgrader.utils import is_grade, is_solution

from grading.autograde import autograde
from grading.course import Course, GradingError, Limits
from grading.release import release_all
from grading.report import collect_grades
from grading.tamper import WATCHED, action, guard, scan

REPO = Path(__file__).resolve().parent.parent
COURSE = Course(REPO)
#: The exercise the cases below are written in, and its answer cell.
ASSIGNMENT, CELL = "05_integrated_gradients", "complete"


def source(assignment: str = ASSIGNMENT) -> nbformat.NotebookNode:
    (path,) = COURSE.source_notebooks(assignment)
    return nbformat.read(path, as_version=4)


def with_answer(code: str, nb: nbformat.NotebookNode | None = None) -> nbformat.NotebookNode:
    """The exercise with ``code`` as the student's code of its answer cell ``CELL``."""
    nb = copy.deepcopy(nb or source())
    (cell,) = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == CELL]
    cell.source = code
    return nb


#: Student code -> what the scan must say about it.
FOUND = {
    "torch.allclose = lambda *a, **k: True": "line 1: torch.allclose replaced",
    "import numpy as _np\n_np.allclose = lambda *a, **k: True": "line 2: numpy.allclose replaced",
    "torch.Tensor.__eq__ = lambda self, other: True": "torch.Tensor.__eq__ replaced",
    "type(images).__eq__ = None": "__eq__ of type(images) replaced",
    "T = torch.Tensor\nT.all = None": "line 2: torch.Tensor.all replaced",
    "import builtins\nbuiltins.abs = len": "builtins.abs replaced",
    "__builtins__.abs = len": "builtins.abs replaced",
    "__builtins__['abs'] = len": "builtins.abs replaced",
    "import sys\nsys.modules['torch'] = None": "sys.modules['torch'] replaced",
    "import sys\nsys.modules.update(torch=None)": "sys.modules changed (update)",
    "del torch.allclose": "torch.allclose deleted",
    "setattr(torch, 'allclose', None)": "torch.allclose changed by setattr",
    "vars(torch)['allclose'] = None": "torch.allclose replaced",
    "torch.__dict__.update(allclose=None)": "torch changed (update)",
    "object.__setattr__(torch, 'allclose', None)": "an attribute changed by __setattr__",
    "from lib import attribution\nattribution.integrated_gradients = None": (
        "lib.attribution.integrated_gradients replaced"
    ),
    "__import__('torch').allclose = None": "torch.allclose replaced",
    "exec('torch.allclose = None')": "torch.allclose replaced (in the string exec runs)",
    "exec('torch.' + 'allclose = None')": "code built at run time, run by exec",
    "eval(compile(text, 'x', 'exec'))": "code built at run time, run by compile",
    "__import__(name)": "a module's name built at run time, run by __import__",
    "torch = None": "torch (which the course's cells import) rebound",
    "import numpy as torch": "torch (which the course's cells import) rebound",
    "globals()['torch'] = None": "torch (which the course's cells import) rebound",
    "def f():\n    global torch\n    torch = None": "line 3: torch (which the course's",
    "def f():\n    global torch\n    torch.allclose = None": "line 3: torch.allclose replaced",
    "def f(x):\n    torch.allclose = x": "line 2: torch.allclose replaced",
    "%matplotlib inline\ntorch.allclose = None": "line 2: torch.allclose replaced",
}

#: Student code the scan leaves alone: it changes nothing that the tests use.
CLEAN = [
    "import torch\nimport numpy as np\nfrom lib import attribution",
    "model = torch.nn.Linear(2, 1)\nmodel.weight.data = torch.zeros(1, 2)\nmodel.bias = None",
    "def f(torch):\n    torch = 1\n    return [torch for torch in range(3)]",
    "def f(data):\n    data.x = 1\n\ndef g():\n    train = Trainer()\n    train.steps = 3",
    "class Net(torch.nn.Module):\n    def __eq__(self, other):\n        return True",
    "f = lambda x: x\nf.__doc__ = 'the identity'",
    "import matplotlib.pyplot as plt\nplt.rcParams['figure.dpi'] = 100",
    "import os\nos.environ['X'] = '1'",
    "exec('x = 1')\nvalue = eval('1 + 1')\nimport importlib\nimportlib.import_module('math')",
    "import re\npattern = re.compile(text)\nmodel.eval()",
    "this is not python",
]


@pytest.mark.parametrize("code", FOUND)
def test_scan_finds_a_change_with_its_cell_and_line(code: str):
    found = scan(with_answer(code), source())
    expected = f"cell {_position()} ({CELL}), "
    assert any(expected in f and FOUND[code] in f for f in found), found


@pytest.mark.parametrize("code", CLEAN)
def test_scan_leaves_code_that_changes_no_tool_alone(code: str):
    assert scan(with_answer(code), source()) == []


def test_scan_leaves_out_the_courses_locked_cells():
    """The grader puts them back before the hand-in runs: a change there changes nothing."""
    nb = source()
    setup = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("locked"))
    setup.source += "\ntorch.allclose = None"
    assert scan(nb, source()) == []


def test_scan_reads_a_cell_the_student_added():
    nb = source()
    nb.cells.insert(0, nbformat.v4.new_code_cell("import torch\ntorch.allclose = None"))
    assert scan(nb, source()) == ["cell 1, line 2: torch.allclose replaced"]


@pytest.mark.parametrize("assignment", COURSE.source_assignments())
def test_the_courses_own_cells_pass_the_scan(assignment: str):
    """Set-up, solutions, the cells that run them and show results, read as if a student had
    written them all: no finding. (Test cells are left out: they swap the course's functions
    for refusals, and put them back.)"""
    nb = source(assignment)
    nb.cells = [cell for cell in nb.cells if not (is_grade(cell) and not is_solution(cell))]
    assert nb.cells and scan(nb, nbformat.v4.new_notebook()) == []


def _position() -> int:
    nb = source()
    grade_ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]
    return grade_ids.index(CELL) + 1


# --- The guard, as it runs in a kernel ----------------------------------------------------


@pytest.fixture
def check():
    """The guard's check, recorded over this process's modules and a notebook namespace."""
    import numpy as np

    import lib.attribution

    namespace = {"torch": torch, "np": np, "attribution": lib.attribution}
    changed = guard(WATCHED, namespace)
    yield lambda: changed().split("\n") if changed() else []
    assert changed() == "", "a test left a change behind"


def test_guard_finds_nothing_unchanged(check):
    assert check() == []


def test_guard_names_each_replaced_tool(check, monkeypatch: pytest.MonkeyPatch):
    import builtins

    import lib.attribution

    monkeypatch.setattr(torch, "allclose", lambda *a, **k: True)
    monkeypatch.setattr(torch.Tensor, "__eq__", lambda self, other: True, raising=False)
    monkeypatch.setattr(builtins, "abs", len)
    monkeypatch.setattr(lib.attribution, "integrated_gradients", len)
    monkeypatch.setitem(sys.modules, "torch.overrides", types.ModuleType("torch.overrides"))
    assert set(check()) == {
        "torch.allclose",
        "torch.Tensor.__eq__",
        "builtins.abs",
        "lib.attribution.integrated_gradients",
        "sys.modules['torch.overrides']",
    }
    monkeypatch.undo()
    assert check() == []


def test_guard_takes_torchs_own_wrapper_for_the_tool_it_wraps(check, monkeypatch):
    """torch._dynamo, imported on first use, wraps torch.manual_seed in a function of its own
    that calls the original: no change. The same wrapper around another function is one."""
    original = torch.manual_seed
    monkeypatch.setattr(torch, "manual_seed", torch._disable_dynamo(original))
    assert check() == []
    monkeypatch.setattr(torch, "manual_seed", torch._disable_dynamo(lambda seed: None))
    assert check() == ["torch.manual_seed"]
    monkeypatch.undo()  # before the fixture's own check (conftest's monkeypatch outlives it)


def test_guard_watches_the_notebooks_module_names(check):
    import numpy as np

    namespace = {"torch": torch, "np": np}
    changed = guard(WATCHED, namespace)
    namespace["np"] = types.SimpleNamespace(**{**vars(np), "allclose": lambda *a, **k: True})
    assert changed() == "np"


# --- The setting --------------------------------------------------------------------------


def _course(root: Path, setting: str) -> Course:
    root.mkdir(parents=True, exist_ok=True)
    config = (REPO / "nbgrader_config.py").read_text(encoding="utf-8")
    (root / "nbgrader_config.py").write_text(config + f"\nc.Tampering.action = {setting!r}\n")
    return Course(root)


def test_the_course_flags_for_review_by_default():
    assert action(COURSE) == "review"


def test_an_unknown_setting_is_refused_by_name(tmp_path: Path):
    with pytest.raises(GradingError, match=r"nbgrader_config.py: c.Tampering.action is 'fail'"):
        action(_course(tmp_path, "fail"))


#: Replaces torch.allclose where the scan cannot see it: setattr fetched from builtins' dict.
UNSEEN = "vars(__builtins__)['set' + 'attr'](torch, 'allclose', lambda *a, **k: True)"


@pytest.mark.grading
@pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")
def test_zero_scores_a_changing_hand_in_0(tmp_path: Path):
    """With "zero", a hand-in whose cells replace torch.allclose scores 0 without running, the
    reason naming the cell and the line; one that the guard alone catches scores 0 too, the
    test cells that passed before the change included; nothing is left to a person."""
    course = _course(tmp_path, "zero")
    shutil.copytree(REPO / "solutions" / ASSIGNMENT, tmp_path / "solutions" / ASSIGNMENT)
    release_all(course)
    (answer,) = [
        c for c in source().cells if c.metadata.get("nbgrader", {}).get("grade_id") == CELL
    ]
    assert scan(with_answer(UNSEEN), source()) == []
    for student, code in {
        "seen": "torch.allclose = lambda *a, **k: True",
        "unseen": UNSEEN,
    }.items():
        folder = course.submitted_dir / student / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(with_answer(f"{answer.source}\n{code}"), folder / f"{ASSIGNMENT}.ipynb")
    result = autograde(course, jobs=2, limits=Limits.of(course), progress=False)
    assert result.ok, result.failures
    seen, unseen = collect_grades(course)
    for row in (seen, unseen):
        assert row.auto_score == 0 < row.auto_max_score and not row.needs_manual_grade, row
        (reason,) = row.reasons
        assert reason.endswith("[scored 0]"), reason
    assert f"({CELL}), line " in seen.reasons[0] and "torch.allclose replaced" in seen.reasons[0]
    assert not list((course.autograded_dir / "seen" / ASSIGNMENT).glob("*.ipynb")), "it ran"
    assert "the hand-in replaced torch.allclose before cell " in unseen.reasons[0]
    ran = nbformat.read(course.autograded_dir / "unseen" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    errors = {
        cell.metadata.nbgrader.grade_id: [o.ename for o in cell.outputs if o.output_type == "error"]
        for cell in ran.cells
        if is_grade(cell) and not is_solution(cell)
    }
    assert errors[f"{CELL}-tests"] == ["ToolsReplaced"] and errors["ig-tests"] == [], errors
