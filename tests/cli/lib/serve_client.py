# Helpers for the `illada serve` tests (tests/cli/serve*.sh): start the server on a free
# loopback port, send requests, read Server-Sent Events, read /metrics. Standard library only.
import http.client
import json
import re
import signal
import sys
import subprocess
import threading
import time


class Fail(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Fail(what)


class Server:
    """`illada serve --port 0 ...`, its port read from the line it prints at start."""

    def __init__(self, binary, model, *args):
        self.proc = subprocess.Popen([binary, "serve", "--model", model, "--port", "0", *args],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.log = []
        self.port = None
        deadline = time.time() + 60
        while time.time() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.log.append(line)
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                break
        if self.port is None:
            self.proc.kill()
            raise Fail("server did not start: " + "".join(self.log) + self.proc.stderr.read())
        self.reader = threading.Thread(target=self._drain, daemon=True)
        self.reader.start()

    def _drain(self):
        for line in self.proc.stderr:
            self.log.append(line)

    def conn(self, timeout=120):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=120):
        """(status, headers dict with lower-case names, body text)."""
        c = self.conn(timeout)
        h = dict(headers or {})
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            h.setdefault("Content-Type", "application/json")
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read().decode("utf-8")
        c.close()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data

    def post(self, path, body, headers=None, expect=200):
        status, _, data = self.request("POST", path, body, headers)
        check(status == expect, f"POST {path} {json.dumps(body)[:200]}: status {status}, wanted {expect}: {data}")
        return json.loads(data)

    def get(self, path, headers=None):
        status, _, data = self.request("GET", path, None, headers)
        check(status == 200, f"GET {path}: status {status}: {data}")
        return data

    def stream(self, path, body, headers=None):
        """Sends a streaming request; returns (events, got_done, seconds to each event)."""
        c = self.conn()
        h = {"Content-Type": "application/json", **(headers or {})}
        t0 = time.time()
        c.request("POST", path, body=json.dumps(body), headers=h)
        r = c.getresponse()
        if r.status != 200:
            raise Fail(f"stream {path}: status {r.status}: {r.read()[:500]}")
        check(r.getheader("Content-Type", "").startswith("text/event-stream"), "stream content type")
        events, times, done = [], [], False
        buf = b""
        while True:
            chunk = r.read1(65536) if hasattr(r, "read1") else r.read(1)
            if not chunk:
                break
            buf += chunk
            while b"\n\n" in buf:
                ev, buf = buf.split(b"\n\n", 1)
                ev = ev.decode("utf-8")
                check(ev.startswith("data: "), "SSE line without 'data: ': " + ev[:100])
                data = ev[6:]
                if data == "[DONE]":
                    done = True
                    continue
                check(not done, "event after [DONE]")
                events.append(json.loads(data))
                times.append(time.time() - t0)
        c.close()
        return events, done, times

    def metrics(self):
        """The numeric samples of /metrics by their full name (labels included)."""
        out = {}
        for line in self.get("/metrics").splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    def health(self):
        return json.loads(self.request("GET", "/health")[2])

    def wait_running(self, n, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.health().get("running", 0) >= n:
                return
            time.sleep(0.02)
        raise Fail(f"the server never ran {n} requests at once")

    def wait_idle(self, timeout=20):
        """Waits until no request runs (or the timeout passes: the caller's check then fails)."""
        deadline = time.time() + timeout
        while time.time() < deadline and self.health().get("running", 0) > 0:
            time.sleep(0.05)

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise Fail(f"server did not exit {timeout} s after signal {sig}")
        self.reader.join(5)
        return rc

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def streamed_text(events, endpoint="chat"):
    """Concatenated text per choice index, finish_reason per choice, usage chunk (or None)."""
    text, finish, usage = {}, {}, None
    for e in events:
        check("error" not in e, "error event: " + json.dumps(e))
        if e.get("usage"):
            usage = e["usage"]
        for c in e.get("choices", []):
            i = c["index"]
            if endpoint == "chat":
                piece = c.get("delta", {}).get("content") or ""
            else:
                piece = c.get("text") or ""
            text[i] = text.get(i, "") + piece
            if c.get("finish_reason"):
                check(i not in finish, f"two finish_reasons for choice {i}")
                finish[i] = c["finish_reason"]
    return text, finish, usage


def run_main(main):
    """Runs a test script's main(): a Fail is one line on stderr and exit status 1."""
    try:
        main()
    except Fail as e:
        print("FAIL:", e, file=sys.stderr)
        sys.exit(1)
