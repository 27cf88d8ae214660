"""Sphinx extension of the course book: launch buttons follow the repository URL.

``_config.yml`` names the launch services (Binder, Colab, a JupyterHub) but the course's
repository URL stays empty until the course is published. sphinx-book-theme cannot build a
launch link without a repository (it stops the build), so while ``repository.url`` is empty
this extension switches the buttons off and says so in the build log; setting the URL is
then all it takes to switch them on.
"""

from __future__ import annotations

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.util import logging

LOGGER = logging.getLogger(__name__)

#: The launch services of sphinx-book-theme's ``launch_buttons`` options.
LAUNCH_KEYS = ("binderhub_url", "colab_url", "jupyterhub_url", "jupyterlite_url")


def _switch_off_without_repository(app: Sphinx, config: Config) -> None:
    options = config.html_theme_options
    if options.get("repository_url"):
        return
    buttons = options.get("launch_buttons", {})
    named = [key for key in LAUNCH_KEYS if buttons.get(key)]
    for key in named:
        buttons[key] = ""
    if named:
        LOGGER.info(
            "launch buttons off (%s): set repository.url in _config.yml to switch them on",
            ", ".join(named),
        )


def setup(app: Sphinx) -> dict[str, bool]:
    app.connect("config-inited", _switch_off_without_repository)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
