"""A real headless Chromium for the report tests (Debian's ``chromium``, driven by Playwright).

No browser is downloaded: Playwright launches ``/usr/bin/chromium`` (``.ci/run`` installs the
``chromium`` package when it is missing) with the flags this machine's closed network needs.
Without a Chromium the tests are skipped on a developer's machine and fail under CI (``CI`` set).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def chromium_path() -> str:
    path = os.environ.get("JAXRNN_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        message = "no chromium on PATH (apt-get install chromium; .ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@contextmanager
def browser():
    """A Chromium context with an empty profile; yields ``open(path) -> (page, console_errors)``."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="the test extra installs playwright")
    executable = chromium_path()
    with tempfile.TemporaryDirectory() as profile, sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=executable, args=FLAGS, headless=True, viewport={"width": 1300, "height": 900},
            offline=True)

        def open_page(path: Path):
            page = context.new_page()
            errors = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
            page.goto(Path(path).resolve().as_uri())
            page.wait_for_load_state("load")
            return page, errors

        try:
            yield open_page
        finally:
            context.close()


def image_widths(page) -> list[int]:
    """``naturalWidth`` of every ``<img>`` once loaded (0 means it failed to decode)."""
    return page.evaluate("Promise.all(Array.from(document.images).map(i => i.decode().then(() => i.naturalWidth,"
                         " () => 0)))")
