"""Headless Chromium driven over the Chrome DevTools Protocol, with aiohttp's websocket client: no browser
automation package, and nothing downloads a browser. The browser is Debian's `chromium` (or $CHROMIUM).

Only what the status page tests need: open a page, evaluate JavaScript, type and press keys, wait for a
condition, take a screenshot.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import re
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

# The flags that work on a closed network (docs: the machine notes): no sandbox as root, no GPU, and none of
# the background connections Chromium would otherwise try (and have refused) at every start.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)
START_TIMEOUT_S = 30.0
COMMAND_TIMEOUT_S = 30.0


def chromium_path() -> str | None:
    """The Chromium executable: $CHROMIUM, else `chromium` (Debian) or `chromium-browser` on PATH."""
    configured = os.environ.get("CHROMIUM")
    if configured:
        return configured
    return shutil.which("chromium") or shutil.which("chromium-browser")


class BrowserError(AssertionError):
    """A DevTools command failed, or the page threw."""


class Page:
    """One tab, attached with its own session over the browser's one websocket."""

    def __init__(self, browser: Browser, session: str) -> None:
        self._browser = browser
        self._session = session

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        return await self._browser.send(method, session=self._session, **params)

    async def goto(self, url: str) -> None:
        """Navigate and wait for the load event."""
        loaded = self._browser.expect("Page.loadEventFired", self._session)
        result = await self.send("Page.navigate", url=url)
        if result.get("errorText"):
            raise BrowserError(f"navigation to {url} failed: {result['errorText']}")
        await asyncio.wait_for(loaded, COMMAND_TIMEOUT_S)

    async def evaluate(self, expression: str) -> Any:
        """The JSON value of `expression` (awaited when it is a promise)."""
        result = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"{expression!r} threw: {text}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout_s: float = 10.0) -> Any:
        """Poll until `expression` is truthy; its value."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"still false after {timeout_s} s: {expression}")
            await asyncio.sleep(0.1)

    async def type_text(self, text: str) -> None:
        """Type into the focused element, as a keyboard would (input events included)."""
        await self.send("Input.insertText", text=text)

    async def press(self, key: str, *, shift: bool = False) -> None:
        """Press and release one named key (Tab, Enter, " ", Backspace)."""
        codes = {"Tab": 9, "Enter": 13, " ": 32, "Backspace": 8}
        base: dict[str, Any] = {
            "key": key,
            "code": "Space" if key == " " else key,
            "windowsVirtualKeyCode": codes[key],
            "modifiers": 8 if shift else 0,
        }
        down = {**base, "text": "\r" if key == "Enter" else " "} if key in ("Enter", " ") else base
        await self.send("Input.dispatchKeyEvent", type="keyDown", **down)
        await self.send("Input.dispatchKeyEvent", type="keyUp", **base)

    async def screenshot(self, path: Path, *, full_page: bool = True) -> Path:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = await self.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
            )
            params["clip"] = {"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1}
            params["captureBeyondViewport"] = True
        data = await self.send("Page.captureScreenshot", **params)
        await asyncio.to_thread(path.write_bytes, base64.b64decode(data["data"]))
        return path


class Browser:
    """A Chromium process and its DevTools websocket."""

    def __init__(self, process: asyncio.subprocess.Process, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._process = process
        self._ws = ws
        self._ids = itertools.count(1)
        self._replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._waiters: list[tuple[str, str | None, asyncio.Future[dict[str, Any]]]] = []
        self._reader = asyncio.create_task(self._read())

    async def send(self, method: str, *, session: str | None = None, **params: Any) -> dict[str, Any]:
        number = next(self._ids)
        message: dict[str, Any] = {"id": number, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        reply: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[number] = reply
        await self._ws.send_str(json.dumps(message))
        answer = await asyncio.wait_for(reply, COMMAND_TIMEOUT_S)
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error']}")
        result: dict[str, Any] = answer.get("result", {})
        return result

    def expect(self, event: str, session: str | None) -> asyncio.Future[dict[str, Any]]:
        """A future for the next `event` of `session`; ask before causing it."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiters.append((event, session, future))
        return future

    async def new_page(self, width: int = 1400, height: int = 900) -> Page:
        target = await self.send("Target.createTarget", url="about:blank")
        attached = await self.send("Target.attachToTarget", targetId=target["targetId"], flatten=True)
        page = Page(self, attached["sessionId"])
        await page.send("Page.enable")
        await page.send("Runtime.enable")
        await page.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        return page

    async def _read(self) -> None:
        async for message in self._ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(message.data)
            number = data.get("id")
            if number is not None:
                reply = self._replies.pop(number, None)
                if reply is not None and not reply.done():
                    reply.set_result(data)
                continue
            method, session = data.get("method"), data.get("sessionId")
            for waiter in list(self._waiters):
                event, wanted, future = waiter
                if event == method and wanted == session:
                    self._waiters.remove(waiter)
                    if not future.done():
                        future.set_result(data.get("params", {}))

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.send("Browser.close")
        await self._ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._process.wait(), 10)
        if self._process.returncode is None:
            self._process.kill()
            await self._process.wait()


@contextlib.asynccontextmanager
async def launched(executable: str, profile: Path) -> AsyncIterator[Browser]:
    """Chromium with a fresh profile in `profile`, listening for DevTools on a port of its choosing."""
    process = await asyncio.create_subprocess_exec(
        executable,
        *FLAGS,
        f"--user-data-dir={profile}",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        "about:blank",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    url = None
    seen: list[str] = []
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while url is None:
            remaining = deadline - time.monotonic()
            line = await asyncio.wait_for(process.stderr.readline(), max(remaining, 0.1))
            if not line:
                raise BrowserError(f"{executable} exited before DevTools listened:\n" + "".join(seen[-20:]))
            text = line.decode(errors="replace")
            seen.append(text)
            found = re.search(r"DevTools listening on (ws://\S+)", text)
            url = found.group(1) if found else None
    except BaseException:
        process.kill()
        await process.wait()
        raise
    # Chromium keeps writing to stderr: drain it so that it never blocks on a full pipe.
    drain = asyncio.create_task(_drain(process.stderr))
    session = aiohttp.ClientSession()
    try:
        ws = await session.ws_connect(url, max_msg_size=0)
        browser = Browser(process, ws)
        try:
            yield browser
        finally:
            await browser.close()
    finally:
        await session.close()
        drain.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await drain
        if process.returncode is None:
            process.kill()
            await process.wait()


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass
