"""A hand-in that changes the tools its tests use (``torch.allclose``, ``Tensor.__eq__``,
``builtins.abs``, a module in ``sys.modules``) earns nothing from it, and the instructor learns
of it. Two checks, each a reason of its own in the table and ``grades.csv``:

- :func:`scan`, before a hand-in runs (:func:`grading.autograde.plan_class`): the student's
  cells, read as code, assign to or ``setattr`` on what an import bound, replace a class's dunder
  method, change ``builtins`` or ``sys.modules``, rebind a name that the course's cells import,
  or run code built at run time (``exec``, ``eval``, ``compile``, ``__import__`` of anything but
  a written-out string);
- :func:`guard`, in the hand-in's kernel, run by :class:`grading.preprocessors.LimitedExecute`
  outside the notebook (so that no cell of it shows the guard): before the student's first cell
  it records the callables of the modules the tests use (:data:`WATCHED`), and before and after
  each test cell it names those that changed; a test cell that ran with a changed tool fails.

``c.Tampering.action`` in ``nbgrader_config.py`` decides what a finding costs (:func:`action`).
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable

from IPython.core.inputtransformer2 import TransformerManager
from nbformat import NotebookNode
from nbgrader.utils import is_grade, is_locked

from .course import Course, GradingError, describe_cell, grade_id

#: What the guard watches: modules and classes whose attributes the tests call, and a package
#: with ``.*``: it and its modules. The guard imports those the notebook has not imported yet
#: (a student's cell may come first), and leaves out what is not installed.
WATCHED = ("builtins", "torch", "torch.Tensor", "torch.nn.Module", "torch.nn.functional",
           "torch.autograd", "torch.fft", "torch.testing", "numpy", "numpy.fft", "numpy.testing",
           "lib.*")  # fmt: skip
#: What a finding costs (``c.Tampering.action``), and the words the reason ends with.
ACTIONS = {"review": "its tests need a person's review", "zero": "scored 0"}
#: Calls that run text as code or import a module named by text.
_RUNS_TEXT = {"exec", "eval", "compile"}
_IMPORTS_TEXT = {"__import__", "importlib.import_module"}
#: Methods that change a mapping such as ``sys.modules`` or a module's ``__dict__``.
_MUTATORS = {"update", "pop", "popitem", "setdefault", "clear", "__setitem__", "__delitem__"}
_SETATTR = {"__setattr__", "__delattr__"}
#: Dunder attributes that document an object rather than change what it does.
_DOCUMENTING = {"__doc__", "__name__", "__qualname__", "__module__", "__annotations__"}
_MAX_NAMED = 6


def action(course: Course) -> str:
    """``c.Tampering.action`` of ``course``: "review" (the default) or "zero"."""
    value = course.config().Tampering.get("action", "review")
    if value not in ACTIONS:
        raise GradingError(f"{course.config_file}: c.Tampering.action is {value!r}; "
                           f"set it to one of {', '.join(map(repr, ACTIONS))}.")  # fmt: skip
    return value


def listed(items: list[str], separator: str = "; ") -> str:
    """``items`` joined, the first few only."""
    more = len(items) - _MAX_NAMED
    return separator.join(items[:_MAX_NAMED]) + (f" and {more} more" if more > 0 else "")


# --- 1. The static check --------------------------------------------------------------------


def _text(node: ast.AST | None) -> str:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else "…"


def _is_dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__") and name not in _DOCUMENTING


class _Scan(ast.NodeVisitor):
    """The findings in one cell: (line, what), given what the notebook's imports bound
    (``imported``: name -> dotted path) and the names the course's own cells import."""

    def __init__(self, imported: dict[str, str], course_names: dict[str, str]) -> None:
        self.imported, self.course_names = imported, course_names
        self.found: list[tuple[int, str]] = []
        self.depth = 0  # inside a function, class or comprehension: names of its own
        self.globals: set[str] = set()

    def dotted(self, node: ast.AST) -> str | None:
        """What ``node`` is, as a dotted path from an imported name (``numpy.testing``)."""
        if isinstance(node, ast.Name):
            return "builtins" if node.id == "__builtins__" else self.imported.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self.dotted(node.value)
            return base and f"{base}.{node.attr}"
        if isinstance(node, ast.Subscript):  # sys.modules["torch"], torch.__dict__["allclose"]
            base, key = self.dotted(node.value), _text(node.slice)
            if base == "sys.modules":
                return key
            if base and base.endswith(".__dict__"):
                return f"{base.removesuffix('.__dict__')}.{key}"
            return None
        if isinstance(node, ast.Call) and node.args:
            name, first = self.called(node), node.args[0]
            if name in _IMPORTS_TEXT and _text(first) != "…":
                return _text(first)
            if name == "vars":
                return (base := self.dotted(first)) and f"{base}.__dict__"
            if name == "getattr" and len(node.args) > 1:
                return (base := self.dotted(first)) and f"{base}.{_text(node.args[1])}"
        return None

    def called(self, node: ast.Call) -> str | None:
        """The function ``node`` calls: a builtin by its name, or a dotted path."""
        if isinstance(node.func, ast.Name) and node.func.id not in self.imported:
            return node.func.id
        name = self.dotted(node.func)
        return name.removeprefix("builtins.") if name else None

    def report(self, node: ast.AST, what: str) -> None:
        self.found.append((node.lineno, what))

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.ctx, ast.Store | ast.Del):
            verb = "replaced" if isinstance(node.ctx, ast.Store) else "deleted"
            base = self.dotted(node.value)
            if base:
                self.report(node, f"{base}.{node.attr} {verb}")
            elif _is_dunder(node.attr):
                self.report(node, f"{node.attr} of {ast.unparse(node.value)} {verb}")
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if isinstance(node.ctx, ast.Store | ast.Del):
            base, key = self.dotted(node.value), _text(node.slice)
            if base == "sys.modules":
                self.report(node, f"sys.modules[{key!r}] replaced")
            elif base == "builtins" or base and base.endswith(".__dict__"):
                self.report(node, f"{base.removesuffix('.__dict__')}.{key} replaced")
            elif isinstance(node.value, ast.Call) and self.called(node.value) == "globals":
                self.rebound(node, key)
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Store | ast.Del):
            self.rebound(node, node.id)

    def rebound(self, node: ast.AST, name: str, module: str | None = None) -> None:
        """``name`` bound (to ``module``, for an import) where the course's cells see it."""
        own = self.depth and name not in self.globals
        if name in self.course_names and not own and module != self.course_names[name]:
            self.report(node, f"{name} (which the course's cells import) rebound")

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        bound: dict[str, str] = {}
        _imports(node, bound)
        for name, module in bound.items():
            self.rebound(node, name, module)

    visit_ImportFrom = visit_Import

    def visit_Global(self, node: ast.Global) -> None:
        self.globals |= set(node.names)

    def visit_Call(self, node: ast.Call) -> None:
        name, args = self.called(node), node.args
        if name in ("setattr", "delattr") and args:
            key = _text(args[1]) if len(args) > 1 else "…"
            base = self.dotted(args[0])
            if base or _is_dunder(key):
                what = base or ast.unparse(args[0])
                self.report(node, f"{what}.{key} changed by {name}")
        elif isinstance(node.func, ast.Attribute) and node.func.attr in _MUTATORS:
            base = self.dotted(node.func.value)
            if base and (base in ("sys.modules", "builtins") or base.endswith(".__dict__")):
                self.report(node, f"{base.removesuffix('.__dict__')} changed ({node.func.attr})")
        elif isinstance(node.func, ast.Attribute) and node.func.attr in _SETATTR:
            self.report(node, f"an attribute changed by {node.func.attr}")
        elif name in _RUNS_TEXT | _IMPORTS_TEXT:
            code = _text(args[0]) if args else "…"
            if code == "…":
                what = "code" if name in _RUNS_TEXT else "a module's name"
                self.report(node, f"{what} built at run time, run by {name}")
            elif name in _RUNS_TEXT:
                inner = _Scan(self.imported, self.course_names)
                inner.depth, inner.globals = self.depth, self.globals
                inner.visit(_parse(code) or ast.Module(body=[], type_ignores=[]))
                self.found += [(node.lineno, f"{what} (in the string {name} runs)")
                               for _, what in inner.found]  # fmt: skip
        self.generic_visit(node)

    def _own_scope(self, node: ast.AST) -> None:
        """A function, class or comprehension: the names it binds hide the imported ones."""
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            self.rebound(node, node.name)
        inner = list(ast.walk(node))[1:]
        declared = {name for n in inner if isinstance(n, ast.Global) for name in n.names}
        own = {n.arg for n in inner if isinstance(n, ast.arg)}
        own |= {n.id for n in inner if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
        outer, self.imported = (
            self.imported,
            {name: path for name, path in self.imported.items() if name not in own - declared},
        )
        self.depth += 1
        self.generic_visit(node)
        self.depth, self.imported = self.depth - 1, outer

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = visit_ClassDef = _own_scope
    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _own_scope


def _parse(code: str) -> ast.Module | None:
    """A cell's code as Python (IPython's magics turned into calls); ``None`` if it is not
    Python: it raises a SyntaxError when run, and changes nothing."""
    try:
        return ast.parse(TransformerManager().transform_cell(code))
    except (SyntaxError, ValueError):
        return None


def _imports(tree: ast.AST, into: dict[str, str]) -> None:
    """Add the names ``tree`` binds to modules (or to what a module holds) to ``into``: its
    imports, and names given something an imported name reaches (``T = torch.Tensor``)."""
    scan = _Scan(into, {})
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                name = alias.asname or alias.name.split(".")[0]
                into[name] = alias.name if alias.asname else name
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            into.update({a.asname or a.name: f"{node.module}.{a.name}" for a in node.names})
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, path = node.targets[0], scan.dotted(node.value)
            if isinstance(target, ast.Name) and path:
                into[target.id] = path


def scan(handed_in: NotebookNode, source: NotebookNode) -> list[str]:
    """What the student's cells of the notebook ``handed_in`` change of the tests' tools, as
    "cell 4 (complete), line 9: torch.allclose replaced"; ``source`` is the instructor's
    notebook. The course's locked cells are left out: the grader puts them back as they were."""
    course = {grade_id(cell): cell for cell in source.cells if is_locked(cell) and grade_id(cell)}
    course_names: dict[str, str] = {}  # what the set-up and the other cells that run import
    for cell in course.values():
        tree = _parse(cell.source) if cell.cell_type == "code" and not is_grade(cell) else None
        _imports(tree or ast.Module(body=[], type_ignores=[]), course_names)
    imported, own = dict(course_names), []
    for index, cell in enumerate(handed_in.cells):
        tree = _parse(cell.source) if cell.cell_type == "code" else None
        if tree is not None and grade_id(cell) not in course:
            _imports(tree, imported)
            own.append((index, tree))
    findings = []
    for index, tree in own:
        check = _Scan(imported, course_names)
        check.visit(tree)
        where = describe_cell(handed_in, index)
        findings += [f"{where}, line {line}: {what}" for line, what in sorted(check.found)]
    return findings


# --- 2. The guard in the kernel -------------------------------------------------------------


def guard(watched: tuple, namespace: dict) -> "Callable[[], str]":  # noqa: UP037
    """Runs in the hand-in's kernel, before the student's first cell (its source is sent
    there): records the callables and modules of ``watched`` (see :data:`WATCHED`), the modules
    of ``sys.modules`` under them and those that the notebook's ``namespace`` holds. Returns the
    check: the names of those that are no longer the same objects, one a line."""
    import importlib
    import pkgutil
    import sys
    import types

    missing = object()

    def find(name: str) -> object:
        parts, found = name.split("."), importlib.import_module(name.split(".")[0])
        for count, part in enumerate(parts[1:], start=2):
            has = getattr(found, part, missing)
            found = importlib.import_module(".".join(parts[:count])) if has is missing else has
        return found

    def static(cls: type, key: str) -> object:  # the attribute as the class holds it
        return next((vars(base)[key] for base in cls.__mro__ if key in vars(base)), missing)

    spaces = {}  # all imported first: an import may change another module (torch.manual_seed)
    for name in watched:
        package = name.removesuffix(".*")
        try:
            spaces[package] = find(package)
            modules = pkgutil.iter_modules(spaces[package].__path__) if name != package else []
            for module in (m.name for m in modules if not m.name.startswith("_")):
                spaces[f"{package}.{module}"] = find(f"{package}.{module}")
        except (ImportError, AttributeError):  # not installed, or not in this version
            pass
    # torch._dynamo, imported on first use (an optimiser's step), wraps torch.manual_seed in a
    # function of torch's own that calls the original: still the same tool.
    wrapper = getattr(spaces.get("torch"), "_disable_dynamo", lambda fn: None)(len)

    def same(now: object, was: object) -> bool:
        if now is was:
            return True
        if type(now) is not types.FunctionType or type(wrapper) is not types.FunctionType:
            return False
        code, cells = now.__code__, [cell.cell_contents for cell in now.__closure__ or ()]
        calls = dict(zip(code.co_freevars, cells, strict=False)).get("fn", missing)
        return code is wrapper.__code__ and now.__globals__ is wrapper.__globals__ and calls is was

    mappings, classes = [], []  # (label, mapping or class, key, value)
    for name, space in spaces.items():
        if isinstance(space, type):
            classes += [(f"{name}.{key}", space, key, static(space, key)) for key in dir(space)]
        else:
            mappings += [(f"{name}.{key}", vars(space), key, value)
                         for key, value in vars(space).items()
                         if callable(value) or isinstance(value, types.ModuleType)]  # fmt: skip
    roots = {name.split(".")[0] for name in spaces}
    loaded = list(sys.modules.items())
    mappings += [(f"sys.modules[{key!r}]", sys.modules, key, value)
                 for key, value in loaded if key.split(".")[0] in roots]  # fmt: skip
    mappings += [(key, namespace, key, value) for key, value in namespace.items()
                 if isinstance(value, types.ModuleType)]  # fmt: skip

    def changed() -> str:
        found = [label for label, space, key, was in mappings if not same(space.get(key), was)]
        found += [label for label, cls, key, was in classes if not same(static(cls, key), was)]
        return "\n".join(found)

    return changed


def guard_code(key: str) -> str:
    """The expression that starts :func:`guard` in a kernel, in a namespace of its own, and
    keeps its check as ``sys.<key>``. The kernel evaluates it, as :func:`check_code`, after
    a cell's run (as a ``user_expressions`` entry): outside the run, where IPython has not put
    its own names into ``builtins``."""
    shell = "__import__('IPython').get_ipython()"
    start = f"__import__('sys').{key} = guard({WATCHED!r}, {shell}.user_ns)"
    return f"exec({inspect.getsource(guard) + start!r}, {{}})"


def check_code(key: str) -> str:
    """The expression that runs the check of :func:`guard_code`."""
    return f"__import__('sys').{key}()"
