"""The run report in a real browser: headless Chromium driven over the DevTools protocol
(``--remote-debugging-pipe``: JSON messages on file descriptors 3 and 4, standard library
only). Skipped, with the reason, where no Chromium is installed (`.ci/run` installs it
with apt-get where it can)."""

import base64
import fcntl
import io
import json
import os
import select
import shutil
import subprocess
import time

import imageio.v3 as iio
import numpy as np
import pytest

from lightgen.tasks.report import write_report

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BROWSER = next((b for b in map(shutil.which, BROWSERS) if b), None)

pytestmark = pytest.mark.skipif(
    BROWSER is None,
    reason="no Chromium on PATH (apt-get install chromium; .ci/run does so when it can)",
)


class DevTools:
    """A headless Chromium and one page, spoken to over the DevTools pipe."""

    def __init__(self, exe: str, profile_dir, timeout_s: float = 60.0):
        self.timeout_s, self.next_id, self.events, self.buf = timeout_s, 0, [], b""
        to_child_r, self.to_child = os.pipe()
        self.from_child, from_child_w = os.pipe()
        # above 4, so the child's dup2 onto 3 and 4 cannot overwrite one with the other
        a = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10)
        b = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)
        os.close(to_child_r)
        os.close(from_child_w)

        def on_fds_3_and_4():
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [
                exe,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-pipe",
                f"--user-data-dir={profile_dir}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=False,
            preexec_fn=on_fds_3_and_4,
        )
        os.close(a)
        os.close(b)
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.from_child], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer over the DevTools pipe in time")
            chunk = os.read(self.from_child, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe (it exited)")
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method: str, session: bool = False, **params) -> dict:
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params}
        if session:
            msg["sessionId"] = self.session
        os.write(self.to_child, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout_s
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def page(self, method: str, **params) -> dict:
        return self.call(method, session=True, **params)

    def wait_for(self, method: str) -> dict:
        deadline = time.monotonic() + self.timeout_s
        for i, e in enumerate(self.events):
            if e.get("method") == method:
                return self.events.pop(i)
        while True:
            e = self._read_message(deadline)
            if e.get("method") == method:
                return e
            self.events.append(e)

    def evaluate(self, expression: str):
        res = self.page("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in res, res
        return res["result"]["value"]

    def close(self):
        try:
            self.call("Browser.close")
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self.to_child)
        os.close(self.from_child)


def console_errors(events: list[dict]) -> list[str]:
    out = []
    for e in events:
        m, p = e.get("method"), e.get("params", {})
        if m == "Runtime.exceptionThrown":
            out.append(json.dumps(p.get("exceptionDetails", {}))[:300])
        elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            out.append(json.dumps(p.get("args", []))[:300])
        elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            out.append(p["entry"].get("text", "")[:300])
    return out


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    b = DevTools(BROWSER, tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()


@pytest.fixture(scope="module")
def loaded_page(browser, tiny_run, tmp_path_factory):
    path = write_report(tiny_run, tmp_path_factory.mktemp("report") / "report.html").path
    for domain in ("Page", "Runtime", "Log"):
        browser.page(f"{domain}.enable")
    browser.page("Page.navigate", url=path.resolve().as_uri())
    browser.wait_for("Page.loadEventFired")
    return browser


def test_report_loads_in_chromium_without_console_errors(loaded_page):
    assert loaded_page.evaluate("document.readyState") == "complete"
    assert console_errors(loaded_page.events) == []


def test_every_image_of_the_report_decodes_in_chromium(loaded_page):
    sizes = loaded_page.evaluate(
        "Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight])"
    )
    assert len(sizes) >= 8
    for complete, w, h in sizes:
        assert complete and w > 0 and h > 0


@pytest.mark.parametrize("width", [390, 1280], ids=["phone", "laptop"])
def test_report_fits_the_screen_and_its_screenshot_is_not_blank(loaded_page, width):
    loaded_page.page(
        "Emulation.setDeviceMetricsOverride",
        width=width,
        height=900,
        deviceScaleFactor=1,
        mobile=width < 600,
    )
    # no sideways scrolling of the page itself (wide tables scroll inside their box)
    overflow = loaded_page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 1
    shot = loaded_page.page("Page.captureScreenshot", format="png")["data"]
    img = iio.imread(io.BytesIO(base64.b64decode(shot)), extension=".png")
    assert img.shape[1] == width
    grey = np.asarray(img[..., :3], dtype=float).mean(-1)
    assert grey.std() > 10 and (grey < 128).mean() > 0.005  # text and figures, not a blank page
