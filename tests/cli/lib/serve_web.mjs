// The web page of `illada serve` in a real browser: Debian's headless Chromium driven by
// playwright-core loads the page, sends a prompt, and the test reads from the DOM the denoising
// view (a canvas per step with masked positions and that step's commits highlighted, seen live
// while the answer streams in over a throttled network, and replayed with the slider frame by frame) and the final answer, which must equal the API's answer
// for the same settings. Saves a screenshot to SCREENSHOT.
// Usage: node serve_web.mjs ILLADA_BIN MODEL_DIR SCREENSHOT
import { chromium } from "playwright-core";
import { check, fail, startServer } from "./serve_start.mjs";

const [bin, model, screenshot] = process.argv.slice(2);
const { server, port } = await startServer(bin, model, ["--model-name", "tiny-demo"]);

let browser;
try {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync"],  // playwright gives it a new empty profile
  });
  const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(`http://127.0.0.1:${port}/`);
  await page.waitForFunction(() => document.getElementById("model").textContent.includes("tiny-demo"));

  // settings: 48 tokens in blocks of 16, 16 steps each, no threshold: many visible steps
  await page.fill("#max_tokens", "48");
  await page.fill("#block_length", "16");
  await page.fill("#steps", "16");
  await page.uncheck("#threshold_on");
  await page.selectOption("#cache", "prefix");
  // Live frames: the network is throttled (Chromium's own emulation, through the DevTools
  // protocol) so that the stream reaches the page over about a second in many reads, however fast
  // the tiny model answers; an observer records every canvas the page shows while the answer runs.
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.emulateNetworkConditions",
                 { offline: false, latency: 0, downloadThroughput: 16 * 1024, uploadThroughput: -1 });
  await page.evaluate(() => {
    window.seen = [];  // {step, masked, fresh, done} per observed change of the canvas
    new MutationObserver(() => {
      const m = document.querySelector(".msg.assistant");
      const c = m && m.querySelector(".canvas");
      if (!c || !c.dataset.step) return;
      const last = window.seen[window.seen.length - 1];
      if (last && last.step === c.dataset.step) return;
      window.seen.push({ step: c.dataset.step, masked: c.querySelectorAll(".tok.masked").length,
                         fresh: c.querySelectorAll(".tok.fresh").length, done: m.classList.contains("done") });
    }).observe(document.getElementById("messages"), { childList: true, subtree: true, attributes: true });
  });
  const prompt = "The cat sat on";
  await page.fill("#prompt", prompt);
  await page.click("#send");
  await page.waitForSelector(".msg.assistant.done", { timeout: 120000 });
  const dom = await page.evaluate(() => {
    const m = document.querySelector(".msg.assistant");
    return {
      error: m.querySelector(".error")?.textContent || "",
      answer: m.querySelector(".answer").textContent,
      finish: m.dataset.finish,
      tokens: m.querySelectorAll(".canvas .tok").length,
      maskedAtEnd: m.querySelectorAll(".canvas .tok.masked").length,
      slider: m.querySelector(".frames input[type=range]")?.max,
      speed: document.getElementById("speed").textContent,
      seen: window.seen,
    };
  });
  check(!dom.error, "the page shows an error: " + dom.error);
  check(errors.length === 0, "JavaScript errors: " + errors.join("; "));
  check(dom.tokens >= 16, `the canvas shows ${dom.tokens} positions`);
  check(dom.maskedAtEnd === 0, "masked positions left at the end");
  // frames seen live, before the answer was done: several steps, with masks and fresh commits
  const live = dom.seen.filter((f) => !f.done);
  check(live.length >= 5, `only ${live.length} canvas frames were shown while the answer ran: ${JSON.stringify(dom.seen)}`);
  check(live.some((f) => f.masked >= 8 && f.fresh >= 1),
        `no live frame showed masked positions and a fresh commit: ${JSON.stringify(live)}`);
  check(live.every((f, i) => i === 0 || Number(f.step) > Number(live[i - 1].step)), "live frames out of order");
  check(Number(dom.slider) >= 16, "no replay slider over the steps: " + dom.slider);
  check(/\d+ forward passes/.test(dom.speed) && /tokens\/s/.test(dom.speed), "speed line: " + dom.speed);
  // the first frame of the replay: the first block all masked but one position
  await page.fill(".frames input[type=range]", "0");
  const frame = () => page.evaluate(() => ({
    masked: document.querySelectorAll(".msg.assistant .canvas .tok.masked").length,
    fresh: document.querySelectorAll(".msg.assistant .canvas .tok.fresh").length,
    label: document.querySelector(".msg.assistant .frames span:last-child").textContent,
  }));
  const first = await frame();
  check(first.masked === 15 && first.fresh === 1, `first replayed frame: ${JSON.stringify(first)} (wanted 15 masked, 1 new)`);
  check(first.label === `step 1 of ${Number(dom.slider) + 1}`, "slider label " + first.label);
  await page.fill(".frames input[type=range]", "8");
  const ninth = await frame();
  check(ninth.masked === 7 && ninth.fresh === 1, `ninth replayed frame: ${JSON.stringify(ninth)} (wanted 7 masked, 1 new)`);
  // the screenshot shows a frame in the middle of the third block: masks and a fresh commit
  await page.fill(".frames input[type=range]", "37");

  // the page's answer is the API's answer for the same settings
  const r = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ messages: [{ role: "user", content: prompt }], max_tokens: 48, block_length: 16, steps: 16,
                           threshold: false, cache: "prefix", temperature: 0, seed: 0, remasking: "low_confidence",
                           cfg_scale: 0, variable_length: true }),
  });
  const api = await r.json();
  check(api.choices[0].message.content === dom.answer,
        `page answer ${JSON.stringify(dom.answer)} != API answer ${JSON.stringify(api.choices[0].message.content)}`);
  check(api.choices[0].finish_reason === dom.finish, "finish_reason " + dom.finish);
  if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
  console.log(`serve_web: all checks passed (${live.length} live frames, ${Number(dom.slider) + 1} steps, ${dom.speed})`);
} finally {
  if (browser) await browser.close();
  server.kill("SIGTERM");
}
