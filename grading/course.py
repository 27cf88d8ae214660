"""The course folder: where nbgrader's steps live and how nbgrader is configured for it."""

from __future__ import annotations

import logging
import os
import shutil
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from nbgrader.converters import BaseConverter, NbGraderException
from nbgrader.coursedir import CourseDirectory
from traitlets.config import Config, PyFileConfigLoader

#: The nbgrader configuration file, at the course root.
CONFIG_FILE = "nbgrader_config.py"

#: Logger handed to nbgrader's converters; ``python -m grading -v`` shows its INFO lines.
LOG = logging.getLogger("grading.nbgrader")


class GradingError(RuntimeError):
    """A grading step cannot go on; the message says what to fix."""


@dataclass(frozen=True)
class Course:
    """An nbgrader course folder, read through its ``nbgrader_config.py``.

    ``root`` need not be this repository: the tests use a copy in a temporary folder. Whatever
    ``CourseDirectory.root`` the configuration file sets, ``root`` wins.
    """

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root).resolve())

    @property
    def config_file(self) -> Path:
        return self.root / CONFIG_FILE

    def config(self, **overrides: object) -> Config:
        """The configuration of ``nbgrader_config.py``, with ``root`` and ``overrides`` applied.

        ``overrides`` maps ``"Class.trait"`` to a value, e.g. ``{"CourseDirectory.db_url": ...}``.
        Only this course's file is read: user-wide files such as ``~/.jupyter/nbgrader_config.py``
        are ignored, so that results do not depend on who runs the step.
        """
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
        """The folder of one nbgrader step, e.g. ``step_dir("source_directory")``."""
        return self.root / getattr(self.coursedir(), step)

    @property
    def source_dir(self) -> Path:
        return self.step_dir("source_directory")

    @property
    def release_dir(self) -> Path:
        return self.step_dir("release_directory")

    @property
    def submitted_dir(self) -> Path:
        return self.step_dir("submitted_directory")

    @property
    def autograded_dir(self) -> Path:
        return self.step_dir("autograded_directory")

    @property
    def feedback_dir(self) -> Path:
        return self.step_dir("feedback_directory")

    def source_assignments(self) -> list[str]:
        """Names of the assignments in the source folder: its sub-folders holding a notebook."""
        if not self.source_dir.is_dir():
            return []
        return sorted(
            path.name
            for path in self.source_dir.iterdir()
            if path.is_dir() and not path.name.startswith(".") and any(path.glob("*.ipynb"))
        )

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


def _put_scripts_on_path() -> None:
    """Make this environment's console scripts findable by nbgrader's subprocesses.

    nbgrader runs the ``alembic`` command (from ``PATH``) to stamp a new gradebook; with the
    virtual environment's interpreter called directly, not activated, it would not be found.
    """
    scripts = sysconfig.get_path("scripts")
    if shutil.which("alembic") is None and scripts:
        os.environ["PATH"] = os.pathsep.join([scripts, os.environ.get("PATH", "")])


class _ErrorRecorder(logging.Handler):
    """Keeps the ERROR messages nbgrader logs, to quote them when a step fails."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def run_converter(converter: BaseConverter, what: str) -> None:
    """Run an nbgrader converter; turn its failure into a :class:`GradingError` naming ``what``.

    nbgrader logs the reason (often a traceback) and then raises a generic exception; the
    error raised here quotes those log messages.
    """
    _put_scripts_on_path()
    recorder = _ErrorRecorder()
    converter.log.addHandler(recorder)
    try:
        converter.start()
    except NbGraderException as error:
        details = "\n".join(recorder.messages) or str(error)
        raise GradingError(f"{what} failed:\n{details}") from error
    finally:
        converter.log.removeHandler(recorder)
