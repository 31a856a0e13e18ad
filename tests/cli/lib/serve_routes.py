# The checks of tests/cli/serve.sh against a running `illada serve` on a tiny text model:
# every route, non-streaming = streaming = `illada generate` at temperature 0, usage and
# finish_reason, auth, the 4xx answers, step-level batching with batch invariance.
# Usage: python3 serve_routes.py ILLADA_BIN MODEL_DIR
import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from serve_client import Server, check, run_main, streamed_text  # noqa: E402

BIN, MODEL = sys.argv[1:3]


def generate(prompt, chat, max_tokens, block, steps, threshold="0.9", cache="dual", extra=()):
    """`illada generate` with the server's default fast path spelled out in flags."""
    args = [BIN, "generate", "--model", MODEL, "--prompt", prompt, "--variable-length", "--max-length",
            str(max_tokens), "--block-length", str(block), "--steps", str(steps), "--cache", cache,
            "--format", "json", *extra]
    if threshold is not None:
        args += ["--threshold", threshold]
    if chat:
        args.append("--chat")
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def routes(s):
    models = json.loads(s.get("/v1/models"))
    check(models["object"] == "list" and models["data"][0]["id"] == "m", f"/v1/models: {models}")
    check(models["data"][0]["max_model_len"] == 256, f"/v1/models context: {models}")
    h = s.health()
    check(h["status"] == "ok" and h["running"] == 0, f"/health: {h}")
    page = s.get("/")
    check("<title>illada</title>" in page and "app.js" in page, "/ is not the web page")
    check("readEvents" in s.get("/app.js"), "/app.js")
    check(".tok.masked" in s.get("/style.css"), "/style.css")
    status, hd, body = s.request("GET", "/app.js")
    check(hd["content-type"].startswith("text/javascript"), "app.js content type " + hd["content-type"])
    tok = s.post("/tokenize", {"content": "The cat sat"})
    check(tok["count"] == len(tok["tokens"]) > 0, f"/tokenize: {tok}")
    det = s.post("/detokenize", {"tokens": tok["tokens"]})
    check(det["content"] == "The cat sat", f"/detokenize: {det}")
    m = s.metrics()
    for name in ["illada_forward_passes_total", "illada_queue_depth", "illada_batch_size_max",
                 "illada_tokens_per_second", "illada_request_duration_seconds_count",
                 "illada_gemm_primitives", "illada_gemm_primitives_cached"]:
        check(name in m, f"/metrics has no {name}")
    check(0 <= m["illada_gemm_primitives_cached"] <= min(512, m["illada_gemm_primitives"]),
          f"cached primitives {m['illada_gemm_primitives_cached']} of {m['illada_gemm_primitives']} created")
    key = 'illada_requests_total{route="/tokenize",status="200"}'
    for _ in range(50):  # the count is recorded just after the response is sent
        if m.get(key) == 1:
            break
        time.sleep(0.02)
        m = s.metrics()
    check(m.get(key) == 1, "/metrics counts requests by route")


def equality(s):
    """Non-streaming, streaming and `illada generate` give the same answer (temperature 0)."""
    cases = [("The cat", False, 16, 8, 8, {}), ("A dog ran to", True, 24, 8, 4, {}),
             ("The cat 12 sat", False, 32, 16, 16, {"threshold": False, "cache": "prefix"})]
    for prompt, chat, max_tokens, block, steps, extra in cases:
        ref = generate(prompt, chat, max_tokens, block, steps, threshold=None if "threshold" in extra else "0.9",
                       cache=extra.get("cache", "dual"))
        path = "/v1/chat/completions" if chat else "/v1/completions"
        endpoint = "chat" if chat else "completions"
        body = {"model": "m", "max_tokens": max_tokens, "block_length": block, "steps": steps, **extra}
        if chat:
            body["messages"] = [{"role": "user", "content": prompt}]
        else:
            body["prompt"] = prompt
        r = s.post(path, body)
        choice = r["choices"][0]
        text = choice["message"]["content"] if chat else choice["text"]
        check(text == ref["text"], f"{path} {prompt!r}: server {text!r} != illada generate {ref['text']!r}")
        check(choice["finish_reason"] == ("stop" if ref["stopped"] else "length"),
              f"finish_reason {choice['finish_reason']} vs generate stopped={ref['stopped']}")
        check(r["object"] == ("chat.completion" if chat else "text_completion"), "object " + r["object"])
        u = r["usage"]
        check(u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"], f"usage {u}")
        if not ref["stopped"]:
            check(u["completion_tokens"] == max_tokens, f"usage without a stop: {u}, max_tokens {max_tokens}")
        if not chat:
            ids = s.post("/tokenize", {"content": prompt, "add_special": True})["tokens"]
            check(u["prompt_tokens"] == len(ids), f"prompt_tokens {u['prompt_tokens']} != {len(ids)}")
        # streaming: the same text, in order, first chunk with the role, usage at the end, [DONE]
        events, done, _ = s.stream(path, {**body, "stream": True, "stream_options": {"include_usage": True}})
        check(done, "no data: [DONE]")
        stext, finish, usage = streamed_text(events, endpoint)
        check(stext.get(0, "") == text, f"streamed {stext.get(0)!r} != non-streamed {text!r}")
        check(finish.get(0) == choice["finish_reason"], f"streamed finish {finish} vs {choice['finish_reason']}")
        check(usage == u, f"streamed usage {usage} != {u}")
        check(events[-1]["choices"] == [] and events[-1]["usage"], "the usage chunk is last, without choices")
        if chat:
            check(events[0]["choices"][0]["delta"].get("role") == "assistant", "first chunk without delta.role")
            check(events[0]["object"] == "chat.completion.chunk", "chunk object")
            check(all("role" not in e["choices"][0].get("delta", {}) for e in events[1:] if e["choices"]),
                  "role after the first chunk")
    # the denoising extension: per step the whole canvas, masked positions null, committed ones
    events, done, _ = s.stream("/v1/chat/completions", {
        "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16, "block_length": 8, "steps": 16,
        "threshold": False, "variable_length": False, "stream": True, "stream_options": {"denoising": True}})
    frames = [c["denoising"] for e in events for c in e.get("choices", []) if "denoising" in c]
    check(len(frames) == 16, f"{len(frames)} denoising frames for 2 blocks x 8 steps")
    check(all(len(f["tokens"]) == 16 for f in frames), "a frame is not the whole 16-token answer canvas")
    check(frames[0]["tokens"].count(None) == 15 and len(frames[0]["committed"]) == 1, f"first frame {frames[0]}")
    check(frames[-1]["tokens"].count(None) == 0, "last frame still has masks")
    check([f["forward_passes"] for f in frames] == list(range(1, 17)), "forward_passes per frame")
    # n > 1 and a prompt given as token ids
    r = s.post("/v1/completions", {"prompt": [5, 6, 7], "n": 2, "max_tokens": 8, "block_length": 8, "steps": 8})
    check([c["index"] for c in r["choices"]] == [0, 1], f"n=2: {r['choices']}")
    check(r["choices"][0]["text"] == r["choices"][1]["text"], "n=2 at temperature 0: the same answer twice")
    # a stop string cuts the answer and gives finish_reason stop
    full = s.post("/v1/completions", {"prompt": "The cat", "max_tokens": 32, "block_length": 8})["choices"][0]
    if len(full["text"]) > 4:
        stop = full["text"][2:4]
        r = s.post("/v1/completions", {"prompt": "The cat", "max_tokens": 32, "block_length": 8, "stop": stop})
        c = r["choices"][0]
        check(c["finish_reason"] == "stop" and full["text"].startswith(c["text"]) and stop not in c["text"],
              f"stop {stop!r}: {c} from {full['text']!r}")


def auth(model_args):
    with Server(BIN, MODEL, *model_args, "--api-key", "sekrit-key") as s:
        for headers in [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "sekrit-key"}]:
            status, hd, body = s.request("GET", "/v1/models", headers=headers)
            check(status == 401, f"/v1/models with {headers}: {status}")
            check(json.loads(body)["error"]["code"] == "invalid_api_key", "401 error object: " + body)
            check(hd.get("www-authenticate") == "Bearer", "401 without WWW-Authenticate")
        status, _, _ = s.request("POST", "/v1/completions", {"prompt": "x"})
        check(status == 401, "completions without a key")
        status, _, _ = s.request("GET", "/metrics")
        check(status == 401, "metrics without a key")
        good = {"Authorization": "Bearer sekrit-key"}
        check(json.loads(s.get("/v1/models", good))["data"][0]["id"] == "m", "models with the key")
        s.post("/v1/completions", {"prompt": "The cat", "max_tokens": 8, "block_length": 8}, good)
        check(s.health()["status"] == "ok", "/health needs no key")
        check("<title>illada</title>" in s.get("/"), "the page needs no key")
        check(s.stop() == 0, "exit status")


def bad_requests(s):
    def expect(status, body, param=None, code=None, path="/v1/chat/completions", raw=False):
        st, hd, data = s.request("POST", path, body if raw else json.dumps(body),
                                 {"Content-Type": "application/json"})
        check(st == status, f"{str(body)[:120]}: status {st}, wanted {status}: {data[:300]}")
        err = json.loads(data)["error"]
        check(err["message"], "error without a message")
        if param is not None:
            check(err.get("param") == param, f"param {err.get('param')} != {param}: {err}")
        if code is not None:
            check(err.get("code") == code, f"code {err.get('code')} != {code}: {err}")
        return err
    msgs = [{"role": "user", "content": "hi"}]
    expect(400, "{not json", raw=True)
    expect(400, "[1, 2]", raw=True)
    expect(400, {"messages": "hi"}, "messages")
    expect(400, {"messages": []}, "messages")
    expect(400, {"messages": [{"content": "no role"}]}, "messages[0].role")
    expect(400, {"messages": [{"role": "user", "content": 5}]}, "messages[0].content")
    expect(400, {"messages": [{"role": "wizard", "content": "x"}]})
    expect(400, {"messages": msgs, "max_tokens": "many"}, "max_tokens")
    expect(400, {"messages": msgs, "max_tokens": -3}, "max_tokens")
    expect(400, {"messages": msgs, "temperature": -1}, "temperature")
    expect(400, {"messages": msgs, "temperature": "hot"}, "temperature")
    expect(400, {"messages": msgs, "n": 1000}, "n")
    expect(400, {"messages": msgs, "stream": "yes"}, "stream")
    expect(400, {"messages": msgs, "steps": 0}, "steps")
    expect(400, {"messages": msgs, "block_length": 1000000})
    expect(400, {"messages": msgs, "threshold": 7}, "threshold")
    expect(400, {"messages": msgs, "cache": "huge"}, "cache")
    expect(400, {"messages": msgs, "remasking": "psychic"}, "remasking")
    expect(400, {"messages": msgs, "stop": 3}, "stop")
    expect(400, {"messages": [{"role": "user", "content": "x"}] * 300}, "messages")
    expect(400, {"messages": [{"role": "user", "content": "The cat sat on the mat. " * 200}]},
           "messages", "context_length_exceeded")
    expect(400, {"prompt": [1, 2, 99999]}, path="/v1/completions")
    expect(400, {"prompt": 12}, "prompt", path="/v1/completions")
    expect(400, {"content": 3}, path="/tokenize")
    expect(400, {"tokens": [1, -1]}, path="/detokenize")
    st, _, data = s.request("POST", "/v1/chat/completions", json.dumps({"messages": msgs, "pad": "x" * 70000}),
                            {"Content-Type": "application/json"})
    check(st == 413, f"oversized body: {st} {data[:200]}")
    st, _, data = s.request("GET", "/no/such/route")
    check(st == 404 and json.loads(data)["error"]["message"], f"unknown route: {st} {data[:200]}")
    # unknown fields are ignored, as OpenAI-compatible servers do
    s.post("/v1/chat/completions", {"messages": msgs, "max_tokens": 8, "block_length": 8, "logprobs": None,
                                    "presence_penalty": 0, "user": "x", "frobnicate": {"a": 1}})
    check(s.health()["status"] == "ok", "the server is unhealthy after the bad requests")


def batching(s):
    """Concurrent requests with different settings share forward passes; each answer equals
    its answer alone (batch invariance at temperature 0)."""
    bodies = [
        {"prompt": "The cat", "max_tokens": 64, "block_length": 8, "steps": 8, "threshold": False},
        {"prompt": "A dog ran", "max_tokens": 48, "block_length": 16, "steps": 16, "threshold": False,
         "cache": "prefix"},
        {"prompt": "The cat 3 sat on", "max_tokens": 64, "block_length": 8, "steps": 4},
        {"prompt": "park", "max_tokens": 32, "block_length": 32, "steps": 32, "cache": "none", "threshold": False},
        {"prompt": "mat 7", "max_tokens": 64, "block_length": 16, "steps": 8, "threshold": 0.5},
        {"prompt": "The dog", "max_tokens": 64, "block_length": 8, "steps": 8, "variable_length": False,
         "threshold": False},
    ]
    start = s.metrics()["illada_forward_passes_total"]
    alone = [s.post("/v1/completions", b)["choices"][0]["text"] for b in bodies]
    before = s.metrics()["illada_forward_passes_total"]
    passes_alone = before - start
    results = [None] * len(bodies)
    barrier = threading.Barrier(len(bodies))

    def worker(i):
        barrier.wait()
        results[i] = s.post("/v1/completions", bodies[i])["choices"][0]["text"]
    for rnd in range(3):
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(bodies))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for i, (a, b) in enumerate(zip(alone, results)):
            check(a == b, f"request {i} batched: {b!r} != alone: {a!r}")
    m = s.metrics()
    check(m["illada_batch_size_max"] > 1, f"no forward pass held more than one request: {m['illada_batch_size_max']}")
    print(f"batching: largest batch {m['illada_batch_size_max']:.0f}, forward passes: one after the other {passes_alone:.0f}, "
          f"concurrent, per round {(m['illada_forward_passes_total'] - before) / 3:.0f}")


def main():
    common = ["--model-name", "m", "--quiet", "--max-body-bytes", "65536"]
    with Server(BIN, MODEL, *common) as s:
        routes(s)
        equality(s)
        bad_requests(s)
        batching(s)
        check(s.stop() == 0, "exit status after SIGTERM")
        check(any("SIGTERM: finishing" in line for line in s.log), "no shutdown line: " + "".join(s.log))
    auth(common)
    print("serve_routes: all checks passed")


if __name__ == "__main__":
    run_main(main)
