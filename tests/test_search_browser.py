"""The search page in a real browser (issue 22): headless Chromium (Debian's ``chromium``
package), driven over the DevTools protocol, types a query into the page served by uvicorn on
loopback, sees a grid of thumbnails, opens the "why" view, and loads nothing from elsewhere.

Skipped where no ``chromium`` is installed (``apt-get install chromium``)."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import test_search_service as service_tests
import uvicorn

from lavis_syncmask.search.service import create_app

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium installed")
checkpoints, loaded = service_tests.checkpoints, service_tests.loaded  # module fixtures
#: Chromium run alone: no first-run, update, sync or metrics traffic, no sandbox (root in CI).
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--remote-debugging-port=0"]  # fmt: skip


@pytest.fixture(scope="module")
def base_url(loaded: tuple) -> Iterator[str]:
    """The search app served by uvicorn on a free loopback port, in a thread."""
    _, index, reader, search = loaded
    config = uvicorn.Config(create_app(index, search, reader), host="127.0.0.1", port=0,
                            log_level="warning")  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def devtools(tmp_path: Path) -> Iterator[str]:
    """The DevTools websocket URL of the one page of a fresh headless Chromium."""
    command = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "about:blank"]
    browser = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        port = None
        for line in iter(browser.stderr.readline, b""):  # "DevTools listening on ws://..."
            found = re.search(rb"ws://127\.0\.0\.1:(\d+)/", line)
            if found:
                port = int(found.group(1))
                break
        assert port is not None, "chromium printed no DevTools address"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as reply:
            pages = [t for t in json.load(reply) if t["type"] == "page"]
        yield pages[0]["webSocketDebuggerUrl"]
    finally:
        browser.terminate()
        browser.wait(timeout=20)


class Page:
    """The few DevTools calls the test needs; events are kept for inspection."""

    def __init__(self, socket: Any) -> None:
        self.socket, self.last_id, self.events = socket, 0, []

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.last_id += 1
        await self.socket.send(json.dumps({"id": self.last_id, "method": method, "params": params}))
        while True:
            message = json.loads(await self.socket.recv())
            if message.get("id") == self.last_id:
                assert "error" not in message, message
                return message["result"]
            self.events.append(message)

    async def eval(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not await self.eval(expression):
            assert time.monotonic() < deadline, f"timed out waiting for {expression}"
            await asyncio.sleep(0.1)


GRID_LOADED = """(() => { const imgs = [...document.querySelectorAll('#grid .hit img')];
  return imgs.length === 3 && imgs.every(i => i.complete && i.naturalWidth > 0); })()"""
WHY_SHOWN = """!document.getElementById('why').hidden
  && document.getElementById('why-image').naturalWidth > 0"""


async def drive(url: str, base: str) -> tuple[list[str], str, list[str]]:
    """Type a query, wait for the grid, open "why"; (captions, why words, request URLs)."""
    import websockets

    async with websockets.connect(url, max_size=None) as socket:
        page = Page(socket)
        await page.call("Network.enable")
        await page.call("Page.navigate", url=base)
        await page.wait_for("document.readyState === 'complete' && !!document.getElementById('q')")
        await page.eval("document.getElementById('q').focus()")
        await page.call("Input.insertText", text="a red dress")
        await page.eval("document.getElementById('search').click()")
        await page.wait_for(GRID_LOADED)
        captions = await page.eval(
            "[...document.querySelectorAll('.caption')].map(c => c.textContent)"
        )
        await page.eval("document.querySelector('.why-button').click()")
        await page.wait_for(WHY_SHOWN)
        words = await page.eval("document.getElementById('why-words').textContent")
        await page.eval("document.getElementById('q').value = ''")
        await page.eval("document.getElementById('search').click()")
        await page.wait_for("document.getElementById('status').className === 'error'")
        status = await page.eval("document.getElementById('status').textContent")
        assert "missing parameter q" in status
        requests = [e["params"]["request"]["url"] for e in page.events
                    if e.get("method") == "Network.requestWillBeSent"]  # fmt: skip
        return captions, words, requests


def test_page_searches_shows_thumbnails_and_why(base_url: str, devtools: str) -> None:
    captions, words, requests = asyncio.run(drive(devtools, base_url))
    assert len(captions) == 3 and all(re.search(r"#\d SKU-\d{4}\s+itc -?\d\.\d{3}", c)
                                      for c in captions)  # fmt: skip
    assert "red" in words and "dress" in words
    assert any("/thumb/" in u for u in requests) and any("/why?" in u for u in requests)
    outside = [u for u in requests if not (u.startswith(base_url) or u.startswith("data:"))]
    assert outside == [], f"the page loaded assets from elsewhere: {outside}"
