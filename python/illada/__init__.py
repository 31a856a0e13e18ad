"""illada: masked-diffusion language models (LLaDA / iLLaDA) from Python.

Bindings over illada's C API (libillada.so) with the standard library only (ctypes); numpy is
used for logits when it is importable.

    import illada
    model = illada.Model.load("/models/LLaDA-8B-Instruct", dtype="bf16")
    out = model.generate("What is 2 + 2?", chat=True, gen_length=64, variable_length=True)
    print(out["text"], out["nfe"])

See docs/python.md for generation, streaming, scoring, logits and quantising
(illada.quantize(path, out, type="q4_k_m")).
"""

from ._lib import library_path, lib as _clib
from .model import (CancelledError, IlladaError, InvalidArgumentError, LoadError, Model, NoTokenizerError, Stream,
                    Tokenizer, quantize)

__version__ = _clib.illada_version().decode()
ABI_VERSION = _clib.illada_abi_version()

__all__ = ["Model", "Tokenizer", "Stream", "quantize", "IlladaError", "InvalidArgumentError", "LoadError", "NoTokenizerError",
           "CancelledError", "library_path", "__version__", "ABI_VERSION"]
