"""Debian's Chromium, driven by Playwright, on pages served from 127.0.0.1 and nothing else."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from slides import BuildError

#: Debian's Chromium (apt-get install chromium); Playwright never downloads a browser here.
CHROMIUM = Path(os.environ.get("XNN_CHROMIUM", "/usr/bin/chromium"))


def missing() -> str | None:
    """What is missing to drive Chromium, or ``None``."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright's Python package (make setup installs it with the dev extras)"
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        return f"Debian's Chromium at {CHROMIUM} (apt-get install chromium; make browser as root)"
    return None


@contextmanager
def chromium() -> Iterator:
    """A headless Chromium (playwright's ``Browser``)."""
    problem = missing()
    if problem:
        raise BuildError(f"printing needs {problem}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield browser
        finally:
            browser.close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@contextmanager
def serve(folder: Path) -> Iterator[str]:
    """``folder`` over HTTP on 127.0.0.1 (a free port), as a web server would serve it:
    Chromium loads web fonts (MathJax's) over HTTP, not from file:// pages."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@contextmanager
def offline_page(browser, server: str, **context_options) -> Iterator:  # noqa: ANN001
    """A page that loads from ``server`` only, and the list of the requests to anywhere else,
    each of which was blocked."""
    context = browser.new_context(**context_options)
    blocked: list[str] = []

    def route(route) -> None:  # noqa: ANN001
        if route.request.url.startswith(server + "/"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", route)
    try:
        yield context.new_page(), blocked
    finally:
        context.close()
