#!/usr/bin/env python3
"""Opens a page in headless Chromium and reads its live DOM through the
DevTools protocol (over --remote-debugging-pipe: no websocket client
needed), polling every 100 ms until the DOM contains NEEDLE.

Usage: cdp_dom.py URL NEEDLE TIMEOUT_SECONDS
Prints "loaded" once the page has loaded (stderr) and its paint timings
("timing {...}": first contentful paint and the load event, in ms from the
start of navigation), then the DOM (stdout);
exits 0 if NEEDLE appeared within the timeout, 1 otherwise.
"""

import json
import os
import subprocess
import sys
import tempfile
import time


TIMING = """(() => {
  const paint = performance.getEntriesByName("first-contentful-paint")[0];
  const nav = performance.getEntriesByType("navigation")[0];
  return {first_contentful_paint: paint ? paint.startTime : null,
          load: nav ? nav.loadEventEnd : null,
          bytes: nav ? nav.transferSize : null};
})()"""


def main():
    url, needle, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
    profile = tempfile.mkdtemp(prefix="disco-cdp-")
    # Chromium reads commands on fd 3 and writes replies on fd 4.
    to_chrome_r, to_chrome_w = os.pipe()
    from_chrome_r, from_chrome_w = os.pipe()

    def fds():
        # Through high numbers first: a pipe may already be fd 3 or 4,
        # and dup2 onto itself would leave it close-on-exec.
        read_end, write_end = os.dup(to_chrome_r), os.dup(from_chrome_w)
        os.dup2(read_end, 3)
        os.dup2(write_end, 4)

    chrome = subprocess.Popen(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
        preexec_fn=fds, close_fds=False,
        stdout=subprocess.DEVNULL, stderr=open(os.environ.get("CDP_LOG", os.devnull), "w"),
    )
    os.close(to_chrome_r)
    os.close(from_chrome_w)
    writer = os.fdopen(to_chrome_w, "wb")
    reader = os.fdopen(from_chrome_r, "rb")
    pending = b""
    next_id = [0]

    def call(method, params=None, session=None):
        next_id[0] += 1
        message = {"id": next_id[0], "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        writer.write(json.dumps(message).encode() + b"\0")
        writer.flush()
        nonlocal pending
        while True:
            while b"\0" not in pending:
                chunk = os.read(reader.fileno(), 65536)
                if not chunk:
                    raise SystemExit("chromium closed the pipe")
                pending += chunk
            raw, pending = pending.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == next_id[0]:
                if "error" in reply:
                    raise SystemExit(f"{method}: {reply['error']}")
                return reply["result"]

    try:
        target = call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        call("Page.navigate", {"url": url}, session)
        deadline = time.monotonic() + timeout
        dom = ""
        loaded = False
        while time.monotonic() < deadline:
            state = call("Runtime.evaluate", {"expression": "document.readyState", "returnByValue": True}, session)
            if not loaded and state["result"].get("value") == "complete":
                loaded = True
                print("loaded", file=sys.stderr, flush=True)
                timing = call("Runtime.evaluate", {"expression": TIMING, "returnByValue": True}, session)
                print("timing", json.dumps(timing["result"].get("value")), file=sys.stderr, flush=True)
            dom = call("Runtime.evaluate", {"expression": "document.documentElement.outerHTML", "returnByValue": True}, session)["result"].get("value", "")
            if loaded and needle in dom:
                print(dom)
                return 0
            time.sleep(0.1)
        print(dom)
        return 1
    finally:
        try:
            call("Browser.close")
        except BaseException:
            pass
        try:
            chrome.wait(timeout=5)
        except subprocess.TimeoutExpired:
            chrome.kill()
        subprocess.run(["rm", "-rf", profile])


if __name__ == "__main__":
    sys.exit(main())
