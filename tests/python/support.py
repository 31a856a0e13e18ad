"""Shared set-up of the Python tests: the installed prefix (ILLADA_TEST_PREFIX, whose
python/ is on PYTHONPATH), its `illada` program to compare with, and the fixture models."""

import json
import os
import shutil
import subprocess
import tempfile

PREFIX = os.environ.get("ILLADA_TEST_PREFIX", "")
SOURCE = os.environ.get("ILLADA_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
CLI = os.path.join(PREFIX, "bin", "illada")
IDS_MODEL = os.path.join(SOURCE, "tests", "fixtures", "tiny_gqa")  # no tokenizer

if not PREFIX or not os.path.exists(CLI):
    raise RuntimeError(
        "set ILLADA_TEST_PREFIX to an installed prefix (ctest does: the capi.install fixture)")

_text_model = None


def text_model():
    """The tiny model with the tiny tokenizer beside it and LLaDA's chat template."""
    global _text_model
    if _text_model is None:
        d = tempfile.mkdtemp(prefix="illada_py_")
        for f in ("config.json", "model.safetensors"):
            shutil.copy(os.path.join(IDS_MODEL, f), d)
        tok = os.path.join(SOURCE, "tests", "fixtures", "generate", "tiny_tokenizer")
        shutil.copy(os.path.join(tok, "tokenizer.json"), d)
        with open(os.path.join(tok, "tokenizer_config.json")) as f:
            cfg = json.load(f)
        with open(os.path.join(SOURCE, "tests", "fixtures", "tokenizer", "llada", "tokenizer_config.json")) as f:
            cfg["chat_template"] = json.load(f)["chat_template"]
        with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
            json.dump(cfg, f)
        _text_model = d
    return _text_model


def cli(*args, binary=False):
    """Runs the installed `illada`; returns stdout (parsed JSON when it is JSON)."""
    out = subprocess.run([CLI, *map(str, args)], check=True, capture_output=True,
                         env=dict(os.environ, OMP_WAIT_POLICY="passive"))
    if binary:
        return out.stdout
    text = out.stdout.decode()
    try:
        return json.loads(text)
    except ValueError:
        return text


def ids_arg(ids):
    return ",".join(map(str, ids))
