"""The report in a real browser: headless Chromium opens a finished tiny campaign's report, and
the test checks that the page logged no console errors, that every figure decoded, and that a
screenshot of it is not blank.

How the checks work, without touching the page: Chromium is driven through the DevTools
protocol over a pipe (``--remote-debugging-pipe``: JSON messages ended by a NUL byte, read on
its file descriptor 3 and written on 4; no websocket, no extra package). The report is loaded
as written, nothing injected into it. After its load event the test asks the browser, from
outside the page (``Runtime.evaluate``), for each ``<img>``'s ``decode()`` outcome and natural
size: an image the browser could not decode (a corrupt or truncated data URI) has width 0 or a
rejected ``decode()``. Console errors are the protocol's own events, collected from the moment
the page starts loading: uncaught exceptions (``Runtime.exceptionThrown``), ``console.error``
and failed ``console.assert`` (``Runtime.consoleAPICalled``), and the browser's error log
(``Log.entryAdded`` at level error: failed loads, blocked content). The screenshot is
``Page.captureScreenshot`` of a 1280 x 4000 viewport. A control test runs the same checks on a
page with a broken image and a console error, and they must catch both.

Skipped only when Chromium is not installed (``.ci/run`` installs Debian's ``chromium``).

Run as a script, it screenshots a report for the README::

    python tests/test_report_browser.py runs/report.html docs/report.png --until "#leaderboard"
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import io
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",  # root in a container
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
]
WIDTH, HEIGHT = 1280, 4000
IMAGES = """Promise.all(Array.from(document.images, img => img.decode().then(
    () => [img.naturalWidth, img.naturalHeight], () => [0, 0])))"""


@dataclass
class Visit:
    """What the browser saw: console errors, each image's decoded size, a PNG screenshot."""

    errors: list[str] = field(default_factory=list)
    images: list[list[int]] = field(default_factory=list)
    screenshot: bytes = b""


class Chromium:
    """A headless Chromium driven through the DevTools protocol on a pipe."""

    def __init__(self, profile: Path, timeout: float = 30.0) -> None:
        assert CHROMIUM is not None
        self.timeout = timeout
        theirs_in, self._out = os.pipe()  # our commands: their fd 3
        self._in, theirs_out = os.pipe()  # their replies and events: their fd 4

        def wire() -> None:  # in the child, before exec: place the pipe ends on fds 3 and 4
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (theirs_in, theirs_out)]
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        command = [
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={WIDTH},{HEIGHT}",
        ]
        self.process = subprocess.Popen(
            [*command, "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,  # its stderr is noise (D-Bus): errors come as events
            pass_fds=(3, 4),
            preexec_fn=wire,  # noqa: PLW1509 - single-threaded test process
        )
        os.close(theirs_in)
        os.close(theirs_out)
        self._buffer = b""
        self._id = 0
        self.events: list[dict[str, Any]] = []

    def _next(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._in], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                raise EOFError("chromium closed its DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._next(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, event: str) -> None:
        deadline = time.monotonic() + self.timeout
        while not any(e.get("method") == event for e in self.events):
            self.events.append(self._next(deadline))

    def close(self) -> None:
        with contextlib.suppress(EOFError, OSError, TimeoutError, RuntimeError):
            self.call("Browser.close")  # chromium may close the pipe before it replies
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._out)
        os.close(self._in)


def _error(event: dict[str, Any]) -> str | None:
    """The console error an event reports, or None."""
    method, params = event.get("method"), event.get("params", {})
    if method == "Runtime.exceptionThrown":
        details = params["exceptionDetails"]
        return details.get("exception", {}).get("description") or details.get("text", "")
    if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
        return " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
    if method == "Log.entryAdded" and params["entry"].get("level") == "error":
        return params["entry"].get("text", "")
    return None


def visit(page: Path, profile: Path, until: str | None = None) -> Visit:
    """Open ``page`` in headless Chromium; what it saw. ``until``: a CSS selector; the
    screenshot then ends where that element starts (the whole page above it)."""
    browser = Chromium(profile)
    try:
        target = browser.call("Target.createTarget", url="about:blank")["targetId"]
        session = browser.call("Target.attachToTarget", targetId=target, flatten=True)
        session = session["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            browser.call(f"{domain}.enable", session)
        browser.call(
            "Emulation.setDeviceMetricsOverride",
            session,
            width=WIDTH,
            height=HEIGHT,
            deviceScaleFactor=1,
            mobile=False,
        )
        browser.events.clear()  # from here on: the report's own events
        browser.call("Page.navigate", session, url=page.resolve().as_uri())
        browser.wait_for("Page.loadEventFired")
        found = browser.call(
            "Runtime.evaluate", session, expression=IMAGES, awaitPromise=True, returnByValue=True
        )
        options: dict[str, Any] = {"format": "png"}
        if until:
            where = f"document.querySelector({json.dumps(until)}).getBoundingClientRect().top"
            top = browser.call("Runtime.evaluate", session, expression=where, returnByValue=True)
            height = int(top["result"]["value"])
            options.update(clip={"x": 0, "y": 0, "width": WIDTH, "height": height, "scale": 1})
            options["captureBeyondViewport"] = True
        shot = browser.call("Page.captureScreenshot", session, **options)
    finally:
        browser.close()
    errors = [e for e in map(_error, browser.events) if e is not None]
    return Visit(errors, found["result"]["value"], base64.b64decode(shot["data"]))


needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not installed (apt-get install -y --no-install-recommends chromium; "
    ".ci/run installs it)",
)


@needs_chromium
def test_the_report_renders_in_chromium(write_campaign, tmp_path):
    import numpy as np
    from PIL import Image

    from promptscout.campaign import Campaign
    from promptscout.config import load_config
    from promptscout.report import write_report
    from promptscout.store import Store

    config = load_config(write_campaign(budget=96))
    with Store(config.store_path) as store:
        campaign = Campaign(config, store, progress=False)
        try:
            campaign.run()
        finally:
            campaign.close()
        report = write_report(store, tmp_path / "report.html")
    page = report.read_text()
    assert "Why the pick wins" in page and "Confusion matrix" in page

    seen = visit(report, tmp_path / "profile")

    assert seen.errors == []
    assert len(seen.images) == page.count("<img ") >= 4  # the confusion matrix and the figures
    assert all(width >= 400 and height >= 250 for width, height in seen.images), seen.images
    image = Image.open(io.BytesIO(seen.screenshot)).convert("RGB")
    (tmp_path / "screenshot.png").write_bytes(seen.screenshot)
    assert image.size == (WIDTH, HEIGHT)
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 100  # text, tables and figures, not one fill
    grey = np.asarray(image.convert("L"))
    assert 0.002 < (grey < 100).mean() < 0.5  # dark text and lines on a light page


@needs_chromium
def test_the_checks_catch_a_broken_figure_and_a_console_error(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text(
        '<!doctype html><html><body><h1>broken</h1><img src="data:image/png;base64,iVBORw0KGgo=">'
        '<script>console.error("boom"); missing();</script></body></html>'
    )
    seen = visit(page, tmp_path / "profile")
    assert seen.images == [[0, 0]]
    assert any("boom" in e for e in seen.errors) and any("missing" in e for e in seen.errors)


def main(argv: list[str] | None = None) -> int:
    """Screenshot a report (the README's picture), scaled down to ``--width``."""
    from PIL import Image

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("report", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--until", help="CSS selector: capture the page above this element")
    parser.add_argument("--width", type=int, default=WIDTH, help="scale the picture to this")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as profile:
        seen = visit(args.report, Path(profile), args.until)
    if seen.errors or not all(w for w, _ in seen.images):
        print(f"console errors {seen.errors}, images {seen.images}", file=sys.stderr)
        return 1
    image = Image.open(io.BytesIO(seen.screenshot)).convert("RGB")
    if args.width < image.width:
        height = round(image.height * args.width / image.width)
        image = image.resize((args.width, height), Image.LANCZOS)
    image.save(args.output, optimize=True)
    print(f"wrote {args.output} ({image.width}x{image.height}, {args.output.stat().st_size} B)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
