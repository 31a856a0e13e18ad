"""A tokenizer.json for the tiny fixture models (vocabulary of 128 ids), so that stop strings,
text cuts and the end-of-thinking text can be tested on them.

    /usr/bin/python3 tools/reference/tiny_tokenizer.py   # writes tests/fixtures/generate/tiny_tokenizer/

Byte-level BPE whose tokens are printable ASCII strings without spaces (the byte-level alphabet
maps them to themselves), so decoding with special tokens kept is plain concatenation; ids 0, 1,
5 are the added special tokens <|startoftext|>, <|endoftext|>, <|mdm_mask|> (the models' BOS,
EOS and mask ids) and 10 is <|eot_id|>. Two-character tokens make stop strings that begin
inside a token or span several tokens possible. `decode` below is what the tokenizers library
does for this file with skip_special_tokens=False.
"""

import json
import os
import string
import sys

sys.dont_write_bytecode = True

SPECIAL = {0: "<|startoftext|>", 1: "<|endoftext|>", 5: "<|mdm_mask|>", 10: "<|eot_id|>"}
PAIRS = ["th", "he", "in", "er", "an", "re", "on", "at", "en", "nd", "ti", "es", "or", "te", "of",
         "ed", "is", "it", "al", "ar", "st", "to", "nt", "ng", "se", "ha", "as", "ou", "io", "le",
         "ve", "co", "me", "de", "hi"]
SINGLES = list(string.ascii_lowercase + string.ascii_uppercase + string.digits + "!\"#$%&'()*+,-./:;=?@[]_{|}~")


def strings():
    """id -> token text for ids 0..127."""
    table = dict(SPECIAL)
    pool = SINGLES + PAIRS
    i = 0
    for tid in range(128):
        if tid in table:
            continue
        table[tid] = pool[i]
        i += 1
    return [table[t] for t in range(128)]


def decode(ids):
    t = strings()
    return "".join(t[i] for i in ids)


def tokenizer_json():
    t = strings()
    added = [{"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, c in sorted(SPECIAL.items())]
    vocab = {c: i for i, c in enumerate(t)}
    merges = [f"{p[0]} {p[1]}" for p in PAIRS]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": merges},
    }


def tokenizer_config_json():
    return {"bos_token": SPECIAL[0], "eos_token": SPECIAL[1], "mask_token": SPECIAL[5],
            "add_bos_token": False, "add_eos_token": False, "clean_up_tokenization_spaces": False,
            "tokenizer_class": "PreTrainedTokenizerFast"}


def write(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "tokenizer.json"), "w") as f:
        json.dump(tokenizer_json(), f, indent=1, ensure_ascii=False)
        f.write("\n")
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
        json.dump(tokenizer_config_json(), f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    repo = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    out = os.path.join(repo, "tests", "fixtures", "generate", "tiny_tokenizer")
    write(out)
    print(f"wrote {out}")
