#!/usr/bin/env node
// eval_illada.py's _encode_pair (ML-GSAI/LLaDA PR #134) on Hugging Face's own tokenizer (the npm
// package `tokenizers`, the Rust library transformers uses), for the C++ test of
// eval::split_context_continuation. Prints JSON [{"context_ids": [...], "continuation_ids": [...]}].
//
//   node tools/reference/encode_pair.mjs --tokenizer DIR|FILE --pairs FILE [--add-bos]
//
// FILE holds [[context, continuation], ...]. The released function, step by step:
//   if add_bos_token: context = bos_token + context        (bos_token text of tokenizer_config.json)
//   n = len(context) - len(context.rstrip())               (Python whitespace, counted in code points)
//   the last n characters of the context move to the start of the continuation
//   whole = tokenizer(context + continuation)["input_ids"]  (add_special_tokens: true)
//   context_ids = tokenizer(context)["input_ids"]
//   continuation_ids = whole[len(context_ids):]
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

// Python's str.isspace(): Unicode White_Space plus U+001C..U+001F.
const PY_SPACE = new Set([0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0, 0x1680,
  0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029,
  0x202f, 0x205f, 0x3000]);

function args(argv) {
  const a = { tokenizer: null, pairs: null, addBos: false };
  for (let i = 2; i < argv.length; ++i) {
    if (argv[i] === "--tokenizer") a.tokenizer = argv[++i];
    else if (argv[i] === "--pairs") a.pairs = argv[++i];
    else if (argv[i] === "--add-bos") a.addBos = true;
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  if (!a.tokenizer || !a.pairs) throw new Error("--tokenizer DIR and --pairs FILE are required");
  return a;
}

async function main() {
  const a = args(process.argv);
  const { Tokenizer } = require("tokenizers");
  const isDir = fs.statSync(a.tokenizer).isDirectory();
  const tok = Tokenizer.fromFile(isDir ? path.join(a.tokenizer, "tokenizer.json") : a.tokenizer);
  const cfgPath = path.join(isDir ? a.tokenizer : path.dirname(a.tokenizer), "tokenizer_config.json");
  const cfg = fs.existsSync(cfgPath) ? JSON.parse(fs.readFileSync(cfgPath, "utf8")) : {};
  const bos = typeof cfg.bos_token === "string" ? cfg.bos_token : cfg.bos_token?.content;
  const ids = async (t) => Array.from((await tok.encode(t, null, { addSpecialTokens: true })).getIds());
  const out = [];
  for (let [context, continuation] of JSON.parse(fs.readFileSync(a.pairs, "utf8"))) {
    if (a.addBos) {
      if (!bos) throw new Error("--add-bos: tokenizer_config.json has no bos_token");
      context = bos + context;
    }
    const cps = Array.from(context);  // code points, as Python counts
    let n = 0;
    while (n < cps.length && PY_SPACE.has(cps[cps.length - 1 - n].codePointAt(0))) ++n;
    if (n > 0) {
      continuation = cps.slice(cps.length - n).join("") + continuation;
      context = cps.slice(0, cps.length - n).join("");
    }
    const whole = await ids(context + continuation);
    const contextIds = await ids(context);
    out.push({ context_ids: contextIds, continuation_ids: whole.slice(contextIds.length) });
  }
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((e) => {
  console.error(e.message);
  process.exit(1);
});
