"""The course folder, its ``nbgrader_config.py``, and what every grading step shares."""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import shutil
import sysconfig
import types
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

from nbgrader import api as nbgrader_api
from nbgrader.apps.api import NbGraderAPI
from nbgrader.coursedir import CourseDirectory
from nbgrader.utils import find_all_files
from traitlets.config import Config, PyFileConfigLoader

#: The nbgrader configuration file, at the course root: every setting and limit of the grader.
CONFIG_FILE = "nbgrader_config.py"
#: The repository: the grading package, the course library ``lib`` beside it, and the default
#: course root.
REPO = Path(__file__).resolve().parent.parent
#: Logger handed to nbgrader; ``python -m grading -v`` shows it. Otherwise nothing: its errors
#: are quoted in the GradingError raised after them, and NbGraderAPI complains about the
#: exchange folder, which the course does not use.
LOG = logging.getLogger("grading.nbgrader")
LOG.addHandler(logging.NullHandler())
T = TypeVar("T")


class GradingError(RuntimeError):
    """A grading step cannot go on; the message says what to fix."""


def grade_id(cell: dict) -> str | None:
    """The nbgrader id of a notebook cell (a dict or a ``NotebookNode``), if it has one."""
    info = cell.get("metadata", {}).get("nbgrader", {}) if isinstance(cell, dict) else {}
    return info.get("grade_id") or None


def describe_cell(nb: dict, index: int) -> str:
    """``cell 3 (bce-tests)``: the position in the notebook ``nb`` counted from 1, and the
    grade id where there is one."""
    if index < 0:
        return "kernel start-up"
    name = grade_id(nb["cells"][index])
    return f"cell {index + 1}" + (f" ({name})" if name else "")


@dataclass(frozen=True)
class Course:
    """An nbgrader course folder, read through its ``nbgrader_config.py``; ``root`` (e.g. a
    copy in a temporary folder) wins over the file's ``CourseDirectory.root``."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root).resolve())

    config_file = property(lambda self: self.root / CONFIG_FILE)

    def config(self, **overrides: object) -> Config:
        """``nbgrader_config.py`` with ``root`` and ``overrides`` (``{"Class.trait": value}``)
        applied; user-wide files such as ``~/.jupyter/nbgrader_config.py`` are not read."""
        if not self.config_file.is_file():
            raise GradingError(
                f"{self.config_file} not found: the course root {self.root} must hold the "
                f"nbgrader configuration ({CONFIG_FILE})."
            )
        cfg = PyFileConfigLoader(CONFIG_FILE, path=str(self.root)).load_config()
        cfg.CourseDirectory.root = str(self.root)
        for key, value in overrides.items():
            section, trait = key.split(".")
            cfg[section][trait] = value
        return cfg

    def coursedir(self, cfg: Config | None = None) -> CourseDirectory:
        """nbgrader's view of the folder, configured by ``cfg`` (default: :meth:`config`)."""
        return CourseDirectory(config=cfg if cfg is not None else self.config())

    def step_dir(self, step: str) -> Path:
        """The folder of one nbgrader step, e.g. ``step_dir("source")``."""
        return self.root / getattr(self.coursedir(), f"{step}_directory")

    source_dir = property(lambda self: self.step_dir("source"))
    release_dir = property(lambda self: self.step_dir("release"))
    submitted_dir = property(lambda self: self.step_dir("submitted"))
    autograded_dir = property(lambda self: self.step_dir("autograded"))
    feedback_dir = property(lambda self: self.step_dir("feedback"))

    @property
    def gradebook(self) -> Path:
        """The SQLite file of the course's gradebook (the grader needs SQLite)."""
        db_url = self.coursedir().db_url
        if not db_url.startswith("sqlite:///"):
            raise GradingError(f"the grader needs an SQLite gradebook; {db_url} is not one.")
        return Path(db_url.removeprefix("sqlite:///"))

    def source_assignments(self) -> list[str]:
        """Names of the assignments in the source folder: its sub-folders holding a notebook."""
        found = {path.parent.name for path in self.source_dir.glob("*/*.ipynb")}
        return sorted(name for name in found if not name.startswith("."))

    def source_notebooks(self, assignment: str) -> list[Path]:
        """The instructor notebooks of ``assignment``; a clear error if there are none."""
        folder = self.source_dir / assignment
        notebooks = sorted(folder.glob("*.ipynb"))
        if not notebooks:
            known = ", ".join(self.source_assignments()) or "none"
            raise GradingError(
                f"assignment {assignment!r} has no source notebook: expected "
                f"{folder}/<notebook>.ipynb (assignments with a source: {known})."
            )
        return notebooks

    def copy_files(self, source: Path, dest: Path) -> None:
        """The files of the folder ``source`` into ``dest``, but its notebooks, its links and
        what ``CourseDirectory.ignore`` names (as nbgrader copies an assignment's files)."""
        ignore = [*self.coursedir().ignore, "*.ipynb"]
        for path in map(Path, find_all_files(str(source), ignore)):
            if not path.is_symlink():
                (dest / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, dest / path.relative_to(source))

    def nbgrader(self, step: str, what: str, *args: object, **overrides: object) -> None:
        """Run ``NbGraderAPI.<step>(*args)`` on this course, configured with ``overrides``;
        its failure becomes a :class:`GradingError` naming ``what``, quoting nbgrader's errors.
        """
        ready_for_new_gradebooks()
        cfg = self.config(**overrides)
        api = NbGraderAPI(coursedir=self.coursedir(cfg), config=cfg, log=LOG)
        result = getattr(api, step)(*args)
        if not result["success"]:
            log = result.get("log") or ""
            starts = [log.find(level) for level in ("[ERROR]", "[CRITICAL]") if level in log]
            details = log[min(starts) :] if starts else result["error"].strip().splitlines()[-1]
            raise GradingError(f"{what} failed:\n{details.strip()}")


def ready_for_new_gradebooks() -> None:
    """nbgrader stamps each new gradebook with the revision that `alembic heads` prints, run as
    a new process: this environment's scripts go on ``PATH`` where ``alembic`` is missing (the
    interpreter called directly, ``.venv/bin/python``, the environment not activated), and the
    revision, fixed for the installed nbgrader, is asked once per process instead of once per
    gradebook (a second each: releasing an assignment makes a throwaway gradebook)."""
    if shutil.which("alembic") is None:
        scripts = sysconfig.get_path("scripts")
        os.environ["PATH"] = os.pathsep.join([scripts, os.environ.get("PATH", "")])
    if not hasattr(nbgrader_api.get_alembic_version, "cache_info"):
        nbgrader_api.get_alembic_version = functools.cache(nbgrader_api.get_alembic_version)


@dataclass(frozen=True)
class Limits:
    """What one hand-in may use, and the margins around it: ``c.Limits.*`` of
    ``nbgrader_config.py``, where each is documented (:meth:`of` reads them)."""

    cell_timeout: float | None
    cell_timeout_factor: float
    cell_timeout_floor: float
    notebook_timeout: float
    memory_mb: int
    cpu_seconds: int
    startup_timeout: float
    margin: float
    memory_margin_mb: int

    @classmethod
    def of(cls, course: Course, **overrides: float | None) -> Limits:
        """The limits of ``course``'s configuration, with ``overrides`` (``None``: keep)."""
        section, values = course.config().Limits, {}
        for f in fields(cls):
            value = overrides.get(f.name)
            value = section.get(f.name) if value is None else value
            if value is None and f.name != "cell_timeout":
                raise GradingError(f"{course.config_file} does not set c.Limits.{f.name}.")
            if value is not None and value <= 0:
                raise GradingError(f"the limit {f.name} must be positive, not {value}.")
            values[f.name] = int(value) if f.type == "int" else value
        return cls(**values)

    def describe(self) -> str:
        cell = f"{self.cell_timeout:g} s" if self.cell_timeout else "calibrated seconds"
        return (
            f"{cell} per cell, {self.notebook_timeout:g} s per notebook, "
            f"{self.memory_mb} MiB of memory, {self.cpu_seconds} s of CPU time"
        )


# --- One JSON form for every record the grader passes between processes and jobs -------------


def write_json(path: Path, value: Any) -> Path:
    """Write ``value`` (a dataclass, or lists and dicts; paths as text) to ``path`` as JSON,
    atomically: a reader (another process, another Slurm job) never sees half a file."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.part")
    value = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
    partial.write_text(json.dumps(value, default=os.fspath), encoding="utf-8")
    partial.replace(path)
    return path


def read_json(path: Path, kind: type[T]) -> T:
    """What :func:`write_json` wrote to ``path``, rebuilt as ``kind`` (e.g. a dataclass)."""
    return _build(kind, json.loads(Path(path).read_text(encoding="utf-8")))


def _build(kind: Any, data: Any) -> Any:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if data is None:
        return None
    if dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        return kind(**{name: _build(hints[name], value) for name, value in data.items()})
    if origin in (typing.Union, types.UnionType):
        return _build(next(arg for arg in args if arg is not type(None)), data)
    if origin in (list, tuple):
        return origin(_build(args[0], item) for item in data)
    if origin is dict:
        return {key: _build(args[1], value) for key, value in data.items()}
    return Path(data) if kind is Path else data
