#!/usr/bin/env python3
"""Writes small tokenizer.json files that exercise the components the Llama-3 tokenizer does
not use (Metaspace, byte fallback, unk, Split behaviours, Digits, normalizers, added-token
options, decoders, post-processors), plus the corpus to run them on. Their expected outputs
come from Hugging Face's own library (tools/tokenizer/regen_fixtures.sh, --impl hf).

Usage: python3 tools/tokenizer/make_synthetic_tokenizers.py OUT_DIR
Each model is a small BPE trained here, deterministically, on tests/fixtures/tokenizer/corpus.json.
"""
import collections
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
META = "\u2581"

EXTRA_TEXTS = [
    "Hello World and HELLO WORLD and hello world",
    "fill the <mask> here, <mask>s and a<mask> and <mask>",
    "call [TOOL]   arguments [TOOL]\n\nnext",
    "spaces before   <sep> and after <sep>   done",
    "ﬁne ＡＢＣ①Ⅻ ﬀ ｶﾀｶﾅ Å Ω",
    "Crème Brûlée à la carte, naïve café",
    "12345 and 3.14 and 2,500,000 and x1y2z3",
    "unknown chars: ☃ ☂ ♞ ⛄ 𝄞",
    "   leading and trailing   ",
    "<s> literal special tokens </s> <unk>",
]


def byte_chars():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


BYTE_CHARS = byte_chars()


def train(words, alphabet, n_merges, join=lambda a, b: a + b):
    """Naive BPE: words is a Counter of symbol tuples. Returns (vocab list, merges)."""
    vocab = list(alphabet)
    seen = set(vocab)
    words = dict(words)
    merges = []
    for _ in range(n_merges):
        pairs = collections.Counter()
        for w, c in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] += c
        if not pairs:
            break
        (a, b), cnt = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
        if cnt < 2:
            break
        new = join(a, b)
        merges.append((a, b))
        if new not in seen:
            vocab.append(new)
            seen.add(new)
        nw = {}
        for w, c in words.items():
            out = []
            i = 0
            while i < len(w):
                if i + 1 < len(w) and w[i] == a and w[i + 1] == b:
                    out.append(new)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            nw[tuple(out)] = nw.get(tuple(out), 0) + c
        words = nw
    return vocab, merges


def added(id_, content, special=True, **kw):
    d = {"id": id_, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": not special, "special": special}
    d.update(kw)
    return d


def tokenizer(model, normalizer=None, pre=None, post=None, decoder=None, added_tokens=()):
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": list(added_tokens),
            "normalizer": normalizer, "pre_tokenizer": pre, "post_processor": post, "decoder": decoder,
            "model": model}


def bpe(vocab, merges, string_merges=False, **kw):
    m = {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
         "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
         "vocab": {t: i for i, t in enumerate(vocab)},
         "merges": [f"{a} {b}" for a, b in merges] if string_merges else [[a, b] for a, b in merges]}
    m.update(kw)
    return m


def template(bos, bos_id):
    return {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {bos: {"id": bos, "ids": [bos_id], "tokens": [bos]}}}


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    corpus = json.load(open(os.path.join(ROOT, "tests/fixtures/tokenizer/corpus.json")))
    texts = corpus + EXTRA_TEXTS
    with open(os.path.join(out_dir, "corpus.json"), "w") as f:
        json.dump(texts, f, ensure_ascii=False, indent=0)
    train_text = "\n".join(corpus)
    tokenizers = {}

    # SentencePiece-style (Llama-2 / Mistral): frequent characters only, byte fallback for the rest.
    char_count = collections.Counter(train_text.replace(" ", META))
    chars = sorted(c for c, n in char_count.items() if n >= 3 and c not in "\r")
    words = collections.Counter(tuple(META + w) for w in train_text.split())
    words = collections.Counter({tuple(c for c in w if c in chars): n for w, n in words.items()})
    specials = ["<unk>", "<s>", "</s>"]
    byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
    sp_vocab, sp_merges = train(words, specials + byte_tokens + chars, 400)
    sp_added = [added(0, "<unk>"), added(1, "<s>"), added(2, "</s>")]
    tokenizers["spm_llama2"] = tokenizer(
        bpe(sp_vocab, sp_merges, string_merges=True, unk_token="<unk>", fuse_unk=True, byte_fallback=True),
        normalizer={"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": META},
            {"type": "Replace", "pattern": {"String": " "}, "content": META}]},
        post=template("<s>", 1),
        decoder={"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": META}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        added_tokens=sp_added)
    mask_id, tool_id, sep_id = len(sp_vocab), len(sp_vocab) + 1, len(sp_vocab) + 2
    tokenizers["spm_metaspace"] = tokenizer(
        bpe(sp_vocab, sp_merges, unk_token="<unk>", fuse_unk=False, byte_fallback=False),
        pre={"type": "Metaspace", "replacement": META, "prepend_scheme": "first", "split": True},
        decoder={"type": "Metaspace", "replacement": META, "prepend_scheme": "first", "split": True},
        added_tokens=sp_added + [
            added(mask_id, "<mask>", special=False, single_word=True, lstrip=True, normalized=False),
            added(tool_id, "[TOOL]", special=True, rstrip=True),
            added(sep_id, "<sep>", special=False, lstrip=True, rstrip=True, normalized=False)])
    tokenizers["spm_metaspace_always_nosplit"] = tokenizer(
        bpe(sp_vocab, sp_merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True),
        normalizer={"type": "NFKC"},
        pre={"type": "Metaspace", "replacement": META, "prepend_scheme": "always", "split": False},
        decoder={"type": "Sequence", "decoders": [
            {"type": "ByteFallback"},
            {"type": "Metaspace", "replacement": META, "prepend_scheme": "always", "split": False}]},
        added_tokens=sp_added)

    # Byte-level (GPT-2 style) models.
    def bl(s):
        return "".join(BYTE_CHARS[b] for b in s.encode())
    import re
    gpt2_words = collections.Counter()
    for w in re.findall(r"\S+|\s+", train_text):
        gpt2_words[tuple(bl(w))] += 1
    alphabet = [BYTE_CHARS[b] for b in range(256)]
    bl_vocab, bl_merges = train(gpt2_words, ["<|endoftext|>"] + alphabet, 500)
    eot = 0
    hw_id = len(bl_vocab)

    def bl_tok(pre, normalizer=None, extra_added=(), post=None, string_merges=False, **model_kw):
        return tokenizer(bpe(bl_vocab, bl_merges, string_merges=string_merges, **model_kw),
                         normalizer=normalizer, pre=pre, post=post, decoder={"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
                         added_tokens=[added(eot, "<|endoftext|>")] + list(extra_added))

    bytelevel = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}
    tokenizers["bytelevel_gpt2"] = bl_tok(
        {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        normalizer={"type": "NFC"},
        post={"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        extra_added=[added(hw_id, "hello world", special=False, normalized=True)], string_merges=True)
    tokenizers["bytelevel_lower_nfkc"] = bl_tok(
        {"type": "Sequence", "pretokenizers": [{"type": "Whitespace"}, bytelevel]},
        normalizer={"type": "Sequence", "normalizers": [{"type": "NFKC"}, {"type": "Lowercase"}]},
        extra_added=[added(hw_id, "hello world", special=False, normalized=True)])
    tokenizers["bytelevel_strip_accents"] = bl_tok(
        {"type": "Sequence", "pretokenizers": [{"type": "WhitespaceSplit"}, bytelevel]},
        normalizer={"type": "Sequence", "normalizers": [
            {"type": "NFD"}, {"type": "StripAccents"}, {"type": "Strip", "strip_left": True, "strip_right": True},
            {"type": "Replace", "pattern": {"Regex": "[0-9]+"}, "content": "#"}]},
        ignore_merges=True)
    behaviors = ["Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"]
    for behavior in behaviors:
        for invert in (False, True):
            name = f"split_{behavior.lower()}{'_invert' if invert else ''}"
            tokenizers[name] = bl_tok({"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": r"\s+|[,.!?]"}, "behavior": behavior, "invert": invert},
                bytelevel]})
    tokenizers["split_string_digits"] = bl_tok({"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"String": "an"}, "behavior": "MergedWithNext", "invert": False},
        {"type": "Digits", "individual_digits": False},
        bytelevel]})
    # ByteLevel not last: the model sees byte-level characters (Digits runs after it).
    tokenizers["bytelevel_then_digits"] = bl_tok({"type": "Sequence", "pretokenizers": [
        {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        {"type": "Digits", "individual_digits": True}]})

    # Classic BPE with an end-of-word suffix and unk (OpenAI GPT / CLIP style).
    suffix = "</w>"
    ws = collections.Counter()
    for w in re.findall(r"\w+|[^\w\s]+", train_text.lower()):
        ws[tuple(w[:-1]) + (w[-1] + suffix,)] += 1
    base = sorted({s for w in ws for s in w})
    cl_vocab, cl_merges = train(ws, ["<unk>"] + base, 300)
    tokenizers["classic_suffix"] = tokenizer(
        bpe(cl_vocab, cl_merges, unk_token="<unk>", end_of_word_suffix=suffix),
        normalizer={"type": "Lowercase"}, pre={"type": "Whitespace"},
        decoder={"type": "BPEDecoder", "suffix": suffix},
        post={"type": "BertProcessing", "sep": ["</w>", 1], "cls": ["<unk>", 0]},
        added_tokens=[added(0, "<unk>")])

    for name, tok in tokenizers.items():
        with open(os.path.join(out_dir, f"{name}.tokenizer.json"), "w") as f:
            json.dump(tok, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
