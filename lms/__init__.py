"""Hand-ins from a learning platform (Moodle, Canvas), grades and feedback back to it, on top
of :mod:`grading`: one module per step.

- :mod:`lms.platforms` -- how each platform names the files of its bulk download;
- :mod:`lms.collect` -- the download into ``submitted/``, through nbgrader's ZipCollectApp;
- :mod:`lms.sheets` and :mod:`lms.export` -- the gradebook's scores into the platform's grade
  sheet, which its import takes back;
- :mod:`lms.feedback_zip` -- ``feedback/`` as the platform's bulk feedback upload;
- :mod:`lms.roster` -- the platform's ids, names and download names, beside the gradebook.

From the command line: ``python -m lms {collect,export,feedback-zip}``.
"""

from .collect import CollectPlan, collect, plan_collect
from .export import export
from .feedback_zip import feedback_zip
from .platforms import CANVAS, MOODLE, PLATFORMS, Download, Platform

__all__ = ["CollectPlan", "collect", "plan_collect", "export", "feedback_zip", "CANVAS"]
__all__ += ["MOODLE", "PLATFORMS", "Download", "Platform"]
