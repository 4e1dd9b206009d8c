"""Opens a local HTML file in headless Chromium and reports what a reader would see go wrong.

Drives Debian's ``chromium`` over the Chrome DevTools Protocol on a pipe (``--remote-debugging-pipe``:
the browser reads commands on fd 3 and writes replies on fd 4, NUL-separated JSON), so no driver binary or
Python package is needed. Collects uncaught JavaScript exceptions, console errors and error log entries
(failed resource loads, ...) while the page loads, then evaluates expressions in the page.
"""
from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
# Flags that work as root, without network, GPU or display; swiftshader gives WebGL (plotly's 3D) in software.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--mute-audio", "--use-angle=swiftshader", "--enable-unsafe-swiftshader")


def find_chromium() -> str | None:
    """The path of an installed Chromium, or None."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


class PageProblems(Exception):
    pass


class HeadlessPage:
    """One headless Chromium with one page; use as a context manager.

    >>> with HeadlessPage(find_chromium()) as page:        # doctest: +SKIP
    ...     page.open(Path("report.html"))
    ...     page.evaluate("document.images.length")
    """

    def __init__(self, executable: str, timeout: float = 60.0, window: tuple[int, int] = (1400, 1000)):
        self.timeout = timeout
        self.errors: list[str] = []  # JS exceptions, console errors, error log entries
        self._profile = tempfile.TemporaryDirectory(prefix="iaenet-chromium-")
        to_browser_read, self._to_browser = _high_pipe()
        self._from_browser, from_browser_write = _high_pipe()

        def child_fds():  # the protocol's fixed descriptors in the browser process (dup2 makes them inheritable)
            os.dup2(to_browser_read, 3)
            os.dup2(from_browser_write, 4)

        # close_fds=False keeps fds 3 and 4 open through exec; every other descriptor Python opened is
        # non-inheritable (PEP 446) and closes there anyway
        self._process = subprocess.Popen(
            [executable, *FLAGS, f"--window-size={window[0]},{window[1]}", f"--user-data-dir={self._profile.name}",
             "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=child_fds, close_fds=False)
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict] = []
        target = self._call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self._session = self._call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            self._call(f"{domain}.enable", session=True)

    def __enter__(self) -> "HeadlessPage":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def open(self, path: Path) -> None:
        """Loads a file and waits for its load event (all inline images and scripts done)."""
        self._events.clear()
        self._call("Page.navigate", {"url": Path(path).resolve().as_uri()}, session=True)
        self._wait_for_event("Page.loadEventFired")

    def evaluate(self, expression: str, await_promise: bool = False):
        """The JSON value of a JavaScript expression in the page (a thrown error raises PageProblems)."""
        reply = self._call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                 "awaitPromise": await_promise}, session=True)
        if "exceptionDetails" in reply:
            raise PageProblems(f"{expression!r} threw: {_describe_exception(reply['exceptionDetails'])}")
        return reply["result"].get("value")

    def wait_until(self, expression: str, timeout: float | None = None) -> None:
        """Polls a boolean expression until it is true; raises PageProblems after the timeout."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while not self.evaluate(expression):
            if time.monotonic() > deadline:
                raise PageProblems(f"timed out waiting for {expression!r}")
            self._drain(0.1)

    def screenshot(self, path: Path, clip: tuple[float, float, float, float] | None = None) -> None:
        """Writes a PNG of the visible page, or of the page area clip = (x, y, width, height) in CSS pixels
        from the top left of the document (it may lie below the window)."""
        params: dict = {"format": "png"}
        if clip is not None:
            x, y, width, height = clip
            params.update(captureBeyondViewport=True,
                          clip={"x": x, "y": y, "width": width, "height": height, "scale": 1})
        data = self._call("Page.captureScreenshot", params, session=True)["data"]
        Path(path).write_bytes(base64.b64decode(data))

    def close(self) -> None:
        if self._process.poll() is None:
            try:
                self._send("Browser.close", {}, None)
                self._process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self._process.kill()
                self._process.wait()
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        self._profile.cleanup()

    # -- protocol --------------------------------------------------------------------------------------------

    def _call(self, method: str, params: dict | None = None, session: bool = False) -> dict:
        call_id = self._send(method, params or {}, self._session if session else None)
        deadline = time.monotonic() + self.timeout
        while True:
            reply = next((m for m in self._read(deadline, method) if m.get("id") == call_id), None)
            if reply is not None:
                if "error" in reply:
                    raise PageProblems(f"{method}: {reply['error']}")
                return reply["result"]

    def _send(self, method: str, params: dict, session: str | None) -> int:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        return self._next_id

    def _wait_for_event(self, name: str) -> None:
        deadline = time.monotonic() + self.timeout
        while not any(event.get("method") == name for event in self._events):
            self._read(deadline, name)

    def _drain(self, seconds: float) -> None:
        """Reads the events that arrive within ``seconds``."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ready, _, _ = select.select([self._from_browser], [], [], max(end - time.monotonic(), 0))
            if not ready:
                return
            self._read(time.monotonic() + 1, "events")

    def _read(self, deadline: float, waiting_for: str) -> list[dict]:
        """The complete messages of one read from the browser (blocking until some arrive or the deadline);
        events among them are recorded, problems noted."""
        ready, _, _ = select.select([self._from_browser], [], [], max(deadline - time.monotonic(), 0))
        if not ready:
            raise PageProblems(f"no answer from Chromium for {waiting_for} within {self.timeout:.0f} s")
        chunk = os.read(self._from_browser, 1 << 20)
        if not chunk:
            raise PageProblems(f"Chromium exited (code {self._process.poll()}) while waiting for {waiting_for}")
        self._buffer += chunk
        *complete, self._buffer = self._buffer.split(b"\0")
        messages = [json.loads(raw) for raw in complete]
        for message in messages:
            if "method" in message:
                self._events.append(message)
                self._note_problem(message)
        return messages

    def _note_problem(self, event: dict) -> None:
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.exceptionThrown":
            self.errors.append("uncaught exception: " + _describe_exception(params["exceptionDetails"]))
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            texts = [str(arg.get("value", arg.get("description", ""))) for arg in params.get("args", [])]
            self.errors.append(f"console.{params['type']}: {' '.join(texts)}")
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            entry = params["entry"]
            self.errors.append(f"log ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}".strip())


def _high_pipe() -> tuple[int, int]:
    """os.pipe() with both ends at descriptors >= 10, so that the child's dup2 onto 3 and 4 clobbers neither."""
    ends = []
    for fd in os.pipe():
        ends.append(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10))
        os.close(fd)
    return ends[0], ends[1]


def _describe_exception(details: dict) -> str:
    exception = details.get("exception", {})
    return exception.get("description") or details.get("text", "unknown error")
