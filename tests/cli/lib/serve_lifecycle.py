# The checks of tests/cli/serve_lifecycle.sh: long requests on a slower model (seconds each)
# and what ends them early: a client that disconnects (cancelled between two steps), the queue
# bound (429 with Retry-After), the deadline (504), SIGTERM (drains: the running answer
# completes, new requests get 503, exit 0) and SIGTERM with no drain time (running requests end
# with an error, exit 0).
# Usage: python3 serve_lifecycle.py ILLADA_BIN MODEL_DIR
import json
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from serve_client import Server, check, run_main  # noqa: E402

BIN, MODEL = sys.argv[1:3]
# A request of many full-canvas passes: about 3 s on the slow model when the machine is idle
# (every test cancels it long before; the deadline test's --timeout is 1 s).
LONG = {"prompt": "The cat", "max_tokens": 256, "block_length": 256, "steps": 256, "variable_length": False,
        "threshold": False, "cache": "none"}
SHORT = {"prompt": "The cat", "max_tokens": 32, "block_length": 32, "steps": 8, "variable_length": False,
         "threshold": False, "cache": "none"}


def in_thread(fn):
    out = {}

    def run():
        try:
            out["value"] = fn()
        except Exception as e:  # noqa: BLE001 (reported by the caller)
            out["error"] = e
    t = threading.Thread(target=run)
    t.start()
    return t, out


def cancellation():
    with Server(BIN, MODEL, "--quiet") as s:
        # a streaming client that reads the first chunk and goes away
        c = s.conn()
        c.request("POST", "/v1/completions", json.dumps({**LONG, "stream": True}), {"Content-Type": "application/json"})
        r = c.getresponse()
        check(r.status == 200, f"stream status {r.status}")
        s.wait_running(1)
        time.sleep(0.3)
        c.sock.close()
        c.close()
        s.wait_idle()
        m = s.metrics()
        check(s.health()["running"] == 0, "the request of a client that left still runs")
        check(m.get('illada_requests_ended_total{reason="client_gone"}') == 1, "not counted as client_gone")
        passes = m["illada_forward_passes_total"]
        check(passes < 256, f"{passes:.0f} passes: the cancelled request ran to its end (256)")
        # a non-streaming client that goes away is cancelled too
        c = s.conn()
        c.request("POST", "/v1/completions", json.dumps(LONG), {"Content-Type": "application/json"})
        s.wait_running(1)
        c.sock.close()
        c.close()
        s.wait_idle()
        m = s.metrics()
        check(m.get('illada_requests_ended_total{reason="client_gone"}') == 2, "non-streaming disconnect not cancelled")
        check(m["illada_forward_passes_total"] - passes < 256, "the non-streaming cancelled request ran to its end")
        s.post("/v1/completions", SHORT)  # the engine goes on
        check(s.stop() == 0, "exit status")
        print(f"cancellation: streaming client gone after {passes:.0f} of 256 passes")


def early_text():
    """The first block's text reaches the client while later blocks are still masked."""
    with Server(BIN, MODEL, "--quiet") as s:
        events, done, _ = s.stream("/v1/completions", {
            "prompt": "The cat", "max_tokens": 128, "block_length": 32, "steps": 128, "variable_length": False,
            "threshold": False, "cache": "dual", "stream": True, "stream_options": {"denoising": True}})
        check(done, "no [DONE]")
        order = []  # ("text", pos) or ("frame", masked positions left)
        for e in events:
            for c in e["choices"]:
                if "denoising" in c:
                    order.append(("frame", c["denoising"]["tokens"].count(None)))
                elif c.get("text"):
                    order.append(("text", len(c["text"])))
        first_text = next((i for i, (k, _) in enumerate(order) if k == "text"), None)
        check(first_text is not None, "no text was streamed")
        masked_after = [n for k, n in order[first_text:] if k == "frame" and n > 0]
        check(len(masked_after) > 0, "the first text came only after the whole canvas was decided")
        check(max(masked_after) >= 64, f"the first text came late: at most {max(masked_after)} positions still masked")
        print(f"early text: first text with {max(masked_after)} of 128 positions still masked")
        s.stop()


def queue_and_deadline():
    with Server(BIN, MODEL, "--quiet", "--max-batch", "1", "--max-queue", "0", "--timeout", "1") as s:
        t, out = in_thread(lambda: s.request("POST", "/v1/completions", LONG))
        s.wait_running(1)
        st, hd, body = s.request("POST", "/v1/completions", SHORT)
        check(st == 429, f"a full queue answered {st}: {body}")
        check(hd.get("retry-after") == "1", "429 without Retry-After")
        check(json.loads(body)["error"]["type"] == "rate_limit_error", "429 error type: " + body)
        t.join(60)
        check("value" in out, f"the long request failed: {out}")
        st, _, body = out["value"]
        check(st == 504 and json.loads(body)["error"]["code"] == "timeout", f"past the deadline: {st} {body}")
        m = s.metrics()
        check(m.get('illada_rejected_total{reason="queue_full"}') == 1, "queue_full not counted")
        check(m.get('illada_requests_ended_total{reason="timeout"}') == 1, "timeout not counted")
        # n larger than the batch can ever hold is a 400 naming n
        st, _, body = s.request("POST", "/v1/completions", {**SHORT, "n": 2})
        check(st == 400 and json.loads(body)["error"]["param"] == "n", f"n over --max-batch: {st} {body}")
        check(s.stop() == 0, "exit status")


def shutdown():
    # SIGTERM drains: the running answer completes with 200, the server then exits 0
    with Server(BIN, MODEL) as s:
        alone = s.post("/v1/completions", SHORT)["choices"][0]["text"]
        t, out = in_thread(lambda: s.request("POST", "/v1/completions", {**SHORT, "max_tokens": 96, "steps": 48}))
        s.wait_running(1)
        s.proc.send_signal(signal.SIGTERM)
        t.join(60)
        check("value" in out and out["value"][0] == 200, f"the request running at SIGTERM: {out}")
        check(json.loads(out["value"][2])["choices"][0]["text"].startswith(alone[:1]), "drained answer")
        check(s.proc.wait(30) == 0, "exit status after a drain")
        log = "".join(s.log)
        check("finishing the running requests" in log and "stopped" in log, "shutdown log: " + log)
    # SIGTERM with no drain time: the running request ends with an error, exit 0, promptly
    with Server(BIN, MODEL, "--quiet", "--drain-timeout", "0") as s:
        t, out = in_thread(lambda: s.request("POST", "/v1/completions", LONG))
        s.wait_running(1)
        t0 = time.time()
        s.proc.send_signal(signal.SIGTERM)
        t.join(60)
        check("value" in out, f"the cancelled request: {out}")
        st, _, body = out["value"]
        check(st == 503 and json.loads(body)["error"]["code"] == "shutting_down", f"cancelled by shutdown: {st} {body}")
        check(s.proc.wait(30) == 0, "exit status after a cancelling shutdown")
        print(f"shutdown: cancelled and exited {time.time() - t0:.2f} s after SIGTERM")


def main():
    cancellation()
    early_text()
    queue_and_deadline()
    shutdown()
    print("serve_lifecycle: all checks passed")


if __name__ == "__main__":
    run_main(main)
