// The web page of `illada serve`: a chat over /v1/chat/completions with streaming, whose answer
// area shows the canvas being denoised (stream_options.denoising): masked positions, each step's
// commits highlighted, a slider to replay the steps afterwards, and the speed of the answer.
// Plain JavaScript, no build step, nothing fetched from outside the server.
"use strict";

const $ = (id) => document.getElementById(id);
const history = [];  // {role, content} of the finished turns
let running = null;  // AbortController of the answer being generated

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = $("api_key").value.trim();
  if (key) h["Authorization"] = "Bearer " + key;
  return h;
}

function numberField(id) {
  const v = $(id).value.trim();
  return v === "" ? undefined : Number(v);
}

function settings() {
  const body = {
    max_tokens: numberField("max_tokens"),
    temperature: numberField("temperature"),
    seed: numberField("seed"),
    variable_length: $("variable_length").checked,
    block_length: numberField("block_length"),
    steps: numberField("steps"),
    threshold: $("threshold_on").checked ? numberField("threshold") : false,
    cache: $("cache").value,
    remasking: $("remasking").value,
    cfg_scale: numberField("cfg_scale"),
  };
  for (const k of Object.keys(body)) if (body[k] === undefined) delete body[k];
  return body;
}

function element(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function addMessage(role, text) {
  const m = element("div", "msg " + role);
  m.appendChild(element("div", "role", role));
  const body = element("div", "content", text);
  m.appendChild(body);
  $("messages").appendChild(m);
  m.scrollIntoView({ block: "end" });
  return m;
}

// Draws one denoising frame: a span per answer position, masked ones grey, this step's commits
// highlighted.
function drawCanvas(canvas, frame) {
  canvas.textContent = "";
  const fresh = new Set(frame.committed);
  frame.tokens.forEach((t, i) => {
    const s = element("span", "tok");
    if (t === null) {
      s.classList.add("masked");
      s.textContent = "\u2591";
    } else {
      s.textContent = t;
      if (fresh.has(i)) s.classList.add("fresh");
    }
    canvas.appendChild(s);
  });
  canvas.dataset.masked = String(frame.tokens.filter((t) => t === null).length);
  canvas.dataset.step = String(frame.forward_passes);
}

// Reads an SSE response body and calls onEvent with each parsed `data:` object until [DONE].
async function readEvents(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data: ")) continue;
        const data = line.slice(6);
        if (data === "[DONE]") return;
        onEvent(JSON.parse(data));
      }
    }
  }
}

async function send(text) {
  const system = $("system").value.trim();
  history.push({ role: "user", content: text });
  addMessage("user", text);
  const msg = addMessage("assistant", "");
  msg.classList.add("pending");
  const content = msg.querySelector(".content");
  const canvas = element("div", "canvas");
  const frames = element("div", "frames");
  const answer = element("div", "answer");
  content.append(canvas, answer);
  const messages = (system ? [{ role: "system", content: system }] : []).concat(history);
  const body = Object.assign(settings(), {
    messages, stream: true, stream_options: { include_usage: true, denoising: true },
  });
  const steps = [];
  let forwardPasses = 0;
  const started = performance.now();
  let firstText = null;
  running = new AbortController();
  $("send").disabled = true;
  $("stop").disabled = false;
  try {
    const r = await fetch("v1/chat/completions", {
      method: "POST", headers: headers(), body: JSON.stringify(body), signal: running.signal,
    });
    if (!r.ok) {
      const e = await r.json().catch(() => ({ error: { message: "HTTP " + r.status } }));
      throw new Error(e.error ? e.error.message : "HTTP " + r.status);
    }
    let finish = null;
    let usage = null;
    await readEvents(r, (chunk) => {
      if (chunk.error) throw new Error(chunk.error.message);
      if (chunk.usage) usage = chunk.usage;
      for (const c of chunk.choices || []) {
        if (c.denoising) {
          steps.push(c.denoising);
          forwardPasses = c.denoising.forward_passes;
          drawCanvas(canvas, c.denoising);
        }
        if (c.delta && c.delta.content) {
          if (firstText === null) firstText = performance.now() - started;
          answer.textContent += c.delta.content;
        }
        if (c.finish_reason) finish = c.finish_reason;
      }
    });
    const seconds = (performance.now() - started) / 1000;
    history.push({ role: "assistant", content: answer.textContent });
    msg.dataset.finish = finish || "";
    const tokens = usage ? usage.completion_tokens : 0;
    $("speed").textContent = `${forwardPasses} forward passes, ${tokens} tokens in ${seconds.toFixed(2)} s ` +
      `(${(tokens / seconds).toFixed(1)} tokens/s, first text after ${((firstText || 0) / 1000).toFixed(2)} s), ` +
      `finish_reason ${finish}`;
    if (steps.length > 1) {
      const slider = element("input");
      slider.type = "range";
      slider.min = "0";
      slider.max = String(steps.length - 1);
      slider.value = slider.max;
      const label = element("span", "", `step ${steps.length} of ${steps.length}`);
      slider.addEventListener("input", () => {
        drawCanvas(canvas, steps[Number(slider.value)]);
        label.textContent = `step ${Number(slider.value) + 1} of ${steps.length}`;
      });
      frames.append(element("span", "", "replay"), slider, label);
      content.insertBefore(frames, answer);
    }
  } catch (e) {
    history.pop();
    const err = element("div", "error", e.name === "AbortError" ? "[stopped]" : "Error: " + e.message);
    content.appendChild(err);
  } finally {
    msg.classList.remove("pending");
    msg.classList.add("done");
    running = null;
    $("send").disabled = false;
    $("stop").disabled = true;
  }
}

async function refreshStatus() {
  try {
    const r = await fetch("v1/models", { headers: headers() });
    const j = await r.json();
    $("model").textContent = r.ok ? "model " + j.data[0].id + " (context " + j.data[0].max_model_len + ")"
                                  : (j.error ? j.error.message : "HTTP " + r.status);
  } catch (e) {
    $("model").textContent = "server unreachable";
  }
  try {
    const h = await (await fetch("health")).json();
    $("health").textContent = `${h.status}: ${h.running} running, ${h.queued} queued, ${h.forward_passes} forward passes`;
  } catch (e) {
    $("health").textContent = "";
  }
}

$("composer").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const text = $("prompt").value.trim();
  if (!text || running) return;
  $("prompt").value = "";
  send(text).then(refreshStatus);
});
$("prompt").addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && !ev.shiftKey) {
    ev.preventDefault();
    $("composer").requestSubmit();
  }
});
$("stop").addEventListener("click", () => running && running.abort());
$("clear").addEventListener("click", () => {
  history.length = 0;
  $("messages").textContent = "";
});
$("api_key").addEventListener("change", refreshStatus);
refreshStatus();
