"""Open report pages in headless Chromium with the network off and list what goes wrong.

``python -m satclip.reporting.browser PAGE.html ...`` loads each page from disk in Debian's
``chromium`` (headless, a fresh profile, every proxy and DNS lookup pointed at nothing) through
the DevTools protocol and fails (exit 1) on a console error, an uncaught exception, a request
that would leave the machine (anything but ``file:``, ``data:``, ``blob:`` and ``about:``) and an
image that does not load. The DevTools connection is a small WebSocket client on the standard
library (RFC 6455), so the check needs nothing but Chromium.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

LOCAL_SCHEMES = ("file", "data", "blob", "about", "chrome", "devtools")
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--no-default-browser-check",
                  "--disable-sync", "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
                  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1")
BROKEN_IMAGES_JS = ("JSON.stringify(Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))"
                    ".map(i => i.currentSrc || i.src))")


def find_chromium() -> str | None:
    """The Chromium executable on the PATH (``chromium``, ``chromium-browser``, ``google-chrome``)."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


class DevTools:
    """A minimal DevTools-protocol client over one WebSocket (text frames, client-masked)."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        """Connect to ``ws://host:port/path``."""
        u = urlparse(url)
        self.sock = socket.create_connection((u.hostname, u.port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {u.path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        reply = b""
        while b"\r\n\r\n" not in reply:
            reply += self.sock.recv(4096)
        head, self._buf = reply.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(f"DevTools refused the WebSocket: {head[:200]!r}")
        self._id = 0
        self.events: list[dict] = []

    def _recv_exact(self, n: int) -> bytes:
        while len(self._buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("DevTools closed the connection")
            self._buf += chunk
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def _recv_message(self) -> dict:
        data = b""
        while True:
            b0, b1 = self._recv_exact(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._recv_exact(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._recv_exact(8))[0]
            payload = self._recv_exact(n)
            opcode = b0 & 0x0F
            if opcode == 0x8:
                raise ConnectionError("DevTools closed the WebSocket")
            if opcode in (0x9, 0xA):  # ping / pong: ignore
                continue
            data += payload
            if b0 & 0x80:
                return json.loads(data)

    def send(self, method: str, **params) -> dict:
        """Call ``method`` and return its result (events that arrive meanwhile are kept)."""
        self._id += 1
        msg = json.dumps({"id": self._id, "method": method, "params": params}).encode()
        mask = os.urandom(4)
        header = bytes([0x81]) + (bytes([0x80 | len(msg)]) if len(msg) < 126 else
                                  bytes([0x80 | 126]) + struct.pack(">H", len(msg)) if len(msg) < 65536 else
                                  bytes([0x80 | 127]) + struct.pack(">Q", len(msg)))
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(msg)))
        while True:
            reply = self._recv_message()
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float) -> bool:
        """Collect events until ``method`` arrives (True) or ``timeout`` seconds pass (False)."""
        deadline = time.monotonic() + timeout
        if any(e.get("method") == method for e in self.events):
            return True
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                event = self._recv_message()
            except TimeoutError:
                return False
            self.events.append(event)
            if event.get("method") == method:
                return True
        return False


def _problems(events: list[dict], broken_images: list[str]) -> list[str]:
    out = []
    for e in events:
        method, p = e.get("method"), e.get("params", {})
        if method == "Network.requestWillBeSent":
            url = p.get("request", {}).get("url", "")
            if urlparse(url).scheme not in LOCAL_SCHEMES:
                out.append(f"request leaves the machine: {url}")
        elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
            out.append(f"console error: {text}")
        elif method == "Runtime.exceptionThrown":
            details = p.get("exceptionDetails", {})
            out.append(f"uncaught exception: {details.get('exception', {}).get('description', details.get('text'))}")
        elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            entry = p["entry"]
            out.append(f"browser error: {entry.get('text')} {entry.get('url', '')}".strip())
    out += [f"image does not load: {src}" for src in broken_images]
    return list(dict.fromkeys(out))


def check_pages(pages: list[Path], chromium: str | None = None, timeout: float = 60.0) -> dict[str, list[str]]:
    """Load every page; return ``{page: [problem, ...]}`` (an empty list: the page is clean)."""
    chromium = chromium or find_chromium()
    if chromium is None:
        raise FileNotFoundError("chromium is not installed (Debian: apt-get install chromium)")
    results: dict[str, list[str]] = {}
    profile = tempfile.mkdtemp(prefix="satclip-chromium-")
    try:
        # its own process group: Chromium's helpers (renderer, zygote, crash handler) go with it
        proc = subprocess.Popen([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                                 "--remote-debugging-port=0", "about:blank"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            deadline = time.monotonic() + timeout
            while not (port_file.is_file() and port_file.read_text().count("\n") >= 1):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{chromium} did not start (exit code {proc.poll()})")
                time.sleep(0.1)
            port = int(port_file.read_text().split("\n")[0])
            for page in pages:
                results[str(page)] = _check_one(port, Path(page).resolve(), timeout)
        finally:
            _stop(proc)
    finally:
        _remove_profile(Path(profile))
    return results


def _stop(proc: subprocess.Popen) -> None:
    """Kill Chromium's process group and wait for the browser process."""
    import os
    import signal

    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()


def _remove_profile(path: Path, attempts: int = 20) -> None:
    """Delete the throw-away profile; a helper still exiting may write into it for a moment."""
    import shutil

    for _ in range(attempts):
        shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            return
        time.sleep(0.25)


def _check_one(port: int, page: Path, timeout: float) -> list[str]:
    import urllib.request

    target = json.loads(urllib.request.urlopen(  # noqa: S310 (loopback DevTools endpoint)
        urllib.request.Request(f"http://127.0.0.1:{port}/json/new?about:blank", method="PUT"), timeout=timeout).read())
    tools = DevTools(target["webSocketDebuggerUrl"], timeout)
    try:
        for domain in ("Page", "Runtime", "Network", "Log"):
            tools.send(f"{domain}.enable")
        tools.events.clear()
        tools.send("Page.navigate", url=page.as_uri())
        if not tools.wait_for("Page.loadEventFired", timeout):
            return [f"did not finish loading within {timeout:.0f} s"]
        tools.wait_for("never", 0.5)  # late console messages and image loads
        value = tools.send("Runtime.evaluate", expression=BROKEN_IMAGES_JS, returnByValue=True)
        broken = json.loads(value.get("result", {}).get("value", "[]"))
        return _problems(tools.events, broken)
    finally:
        tools.sock.close()


def main(argv: list[str] | None = None) -> int:
    """``python -m satclip.reporting.browser PAGE.html ...``: exit 1 when a page has a problem."""
    ap = argparse.ArgumentParser(prog="python -m satclip.reporting.browser", description=__doc__.split("\n")[0])
    ap.add_argument("pages", nargs="+", type=Path)
    ap.add_argument("--timeout", type=float, default=60.0)
    args = ap.parse_args(argv)
    results = check_pages(args.pages, timeout=args.timeout)
    bad = {p: problems for p, problems in results.items() if problems}
    for page, problems in results.items():
        print(f"{'FAIL' if problems else 'ok  '} {page}")
        for problem in problems:
            print(f"     {problem}")
    print(f"{len(results) - len(bad)} of {len(results)} pages clean")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
