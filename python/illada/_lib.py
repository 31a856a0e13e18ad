"""ctypes declarations of include/illada/illada.h, and the loading of libillada.so.

The shared library is looked for, in order: the file named by $ILLADA_LIBRARY, then the install
tree this package sits in (PREFIX/python/illada -> PREFIX/lib/libillada.so.ABI). Its ABI version
and the size of every struct are checked against these declarations when the module loads.
"""

import ctypes
import os
from pathlib import Path

ABI_VERSION = 1

c_token = ctypes.c_int32
c_status = ctypes.c_int
c_enum = ctypes.c_int

LOG_CALLBACK = ctypes.CFUNCTYPE(None, c_enum, ctypes.c_char_p, ctypes.c_void_p)
PROGRESS_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p)


class ModelParams(ctypes.Structure):
    _fields_ = [
        ("dtype", c_enum),
        ("n_threads", ctypes.c_int32),
        ("tokenizer_path", ctypes.c_char_p),
        ("pack_weights", ctypes.c_int32),
        ("check_tensors", ctypes.c_int32),
        ("log_callback", LOG_CALLBACK),
        ("log_user_data", ctypes.c_void_p),
    ]


class ContextParams(ctypes.Structure):
    _fields_ = [
        ("n_threads", ctypes.c_int32),
        ("log_callback", LOG_CALLBACK),
        ("log_user_data", ctypes.c_void_p),
    ]


class ChatMessage(ctypes.Structure):
    _fields_ = [("role", ctypes.c_char_p), ("content", ctypes.c_char_p)]


class PromptParams(ctypes.Structure):
    _fields_ = [
        ("chat", ctypes.c_int32),
        ("chat_template", ctypes.c_char_p),
        ("system", ctypes.c_char_p),
    ]


class Tokens(ctypes.Structure):
    _fields_ = [("ids", ctypes.POINTER(c_token)), ("n_ids", ctypes.c_size_t)]


class Step(ctypes.Structure):
    _fields_ = [
        ("request", ctypes.c_size_t),
        ("block", ctypes.c_int64),
        ("step", ctypes.c_int64),
        ("canvas", ctypes.POINTER(c_token)),
        ("canvas_length", ctypes.c_size_t),
        ("prompt_length", ctypes.c_size_t),
        ("committed", ctypes.POINTER(ctypes.c_int32)),
        ("n_committed", ctypes.c_size_t),
    ]


STEP_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.POINTER(Step), ctypes.c_void_p)


class GenerateParams(ctypes.Structure):
    _fields_ = [
        ("gen_length", ctypes.c_int64),
        ("block_length", ctypes.c_int64),
        ("steps", ctypes.c_int64),
        ("temperature", ctypes.c_double),
        ("remasking", c_enum),
        ("cfg_scale", ctypes.c_double),
        ("variable_length", ctypes.c_int32),
        ("stop_strings", ctypes.POINTER(ctypes.c_char_p)),
        ("n_stop_strings", ctypes.c_size_t),
        ("stop_tokens", ctypes.POINTER(c_token)),
        ("n_stop_tokens", ctypes.c_size_t),
        ("end_think_boost", ctypes.c_double),
        ("end_think_power", ctypes.c_double),
        ("end_think_text", ctypes.c_char_p),
        ("threshold", ctypes.c_double),
        ("factor", ctypes.c_double),
        ("cache", c_enum),
        ("logits_eos_inf", ctypes.c_int32),
        ("confidence_eos_eot_inf", ctypes.c_int32),
        ("allow_mask_prediction", ctypes.c_int32),
        ("seed", ctypes.c_uint64),
        ("step_callback", STEP_CALLBACK),
        ("step_user_data", ctypes.c_void_p),
    ]


class Generation(ctypes.Structure):
    _fields_ = [
        ("ids", ctypes.POINTER(c_token)),
        ("n_ids", ctypes.c_size_t),
        ("answer_length", ctypes.c_int64),
        ("text", ctypes.POINTER(ctypes.c_char)),
        ("text_length", ctypes.c_size_t),
        ("nfe", ctypes.c_int64),
        ("stopped", ctypes.c_int32),
        ("cancelled", ctypes.c_int32),
    ]


class ScoreParams(ctypes.Structure):
    _fields_ = [
        ("method", c_enum),
        ("normalize", ctypes.c_int32),
        ("mc_num", ctypes.c_int64),
        ("mc_batch_size", ctypes.c_int64),
        ("cfg_scale", ctypes.c_double),
        ("append_eos", ctypes.c_int32),
        ("add_bos", ctypes.c_int32),
        ("seed", ctypes.c_uint64),
        ("progress_callback", PROGRESS_CALLBACK),
        ("progress_user_data", ctypes.c_void_p),
    ]


class QuantizeParams(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_char_p),
        ("tensor_types", ctypes.POINTER(ctypes.c_char_p)),
        ("n_tensor_types", ctypes.c_size_t),
        ("name", ctypes.c_char_p),
        ("n_threads", ctypes.c_int32),
        ("progress_callback", PROGRESS_CALLBACK),
        ("progress_user_data", ctypes.c_void_p),
        ("log_callback", LOG_CALLBACK),
        ("log_user_data", ctypes.c_void_p),
    ]


_STRUCTS = {
    "illada_model_params": ModelParams,
    "illada_context_params": ContextParams,
    "illada_chat_message": ChatMessage,
    "illada_prompt_params": PromptParams,
    "illada_tokens": Tokens,
    "illada_step": Step,
    "illada_generate_params": GenerateParams,
    "illada_generation": Generation,
    "illada_score_params": ScoreParams,
    "illada_quantize_params": QuantizeParams,
}

P = ctypes.POINTER
_vp = ctypes.c_void_p
_SIGNATURES = {
    "illada_version": (ctypes.c_char_p, []),
    "illada_abi_version": (ctypes.c_int32, []),
    "illada_status_name": (ctypes.c_char_p, [c_status]),
    "illada_struct_size": (ctypes.c_size_t, [ctypes.c_char_p]),
    "illada_free": (None, [_vp]),
    "illada_model_default_params": (ModelParams, []),
    "illada_model_load": (c_status, [ctypes.c_char_p, P(ModelParams), P(_vp), ctypes.c_char_p, ctypes.c_size_t]),
    "illada_model_free": (None, [_vp]),
    "illada_model_n_vocab": (ctypes.c_int64, [_vp]),
    "illada_model_max_sequence_length": (ctypes.c_int64, [_vp]),
    "illada_model_n_params": (ctypes.c_int64, [_vp]),
    "illada_model_mask_token": (c_token, [_vp]),
    "illada_model_eos_token": (c_token, [_vp]),
    "illada_model_dtype": (c_enum, [_vp]),
    "illada_model_has_tokenizer": (ctypes.c_int32, [_vp]),
    "illada_context_default_params": (ContextParams, []),
    "illada_context_new": (c_status, [_vp, P(ContextParams), P(_vp)]),
    "illada_context_free": (None, [_vp]),
    "illada_context_error": (ctypes.c_char_p, [_vp]),
    "illada_tokenize": (c_status, [_vp, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int32, P(P(c_token)),
                                   P(ctypes.c_size_t)]),
    "illada_detokenize": (c_status, [_vp, P(c_token), ctypes.c_size_t, ctypes.c_int32, P(P(ctypes.c_char)),
                                     P(ctypes.c_size_t)]),
    "illada_token_lookup": (c_status, [_vp, ctypes.c_char_p, P(c_token)]),
    "illada_chat_apply": (c_status, [_vp, P(ChatMessage), ctypes.c_size_t, ctypes.c_char_p, ctypes.c_int32,
                                     P(P(ctypes.c_char)), P(ctypes.c_size_t)]),
    "illada_prompt_default_params": (PromptParams, []),
    "illada_prompt_encode": (c_status, [_vp, ctypes.c_char_p, P(PromptParams), P(P(c_token)), P(ctypes.c_size_t)]),
    "illada_generate_default_params": (GenerateParams, []),
    "illada_generate": (c_status, [_vp, P(Tokens), ctypes.c_size_t, P(GenerateParams), P(Generation)]),
    "illada_generation_clear": (None, [P(Generation), ctypes.c_size_t]),
    "illada_score_default_params": (ScoreParams, []),
    "illada_score": (c_status, [_vp, Tokens, P(Tokens), ctypes.c_size_t, P(ScoreParams), P(ctypes.c_double)]),
    "illada_score_text": (c_status, [_vp, ctypes.c_char_p, P(ctypes.c_char_p), ctypes.c_size_t, P(PromptParams),
                                     P(ScoreParams), P(ctypes.c_double)]),
    "illada_logits": (c_status, [_vp, P(c_token), ctypes.c_size_t, P(ctypes.c_float), ctypes.c_size_t]),
    "illada_quantize_default_params": (QuantizeParams, []),
    "illada_quantize": (c_status, [ctypes.c_char_p, ctypes.c_char_p, P(QuantizeParams), ctypes.c_char_p,
                                   ctypes.c_size_t]),
}


def _candidates():
    env = os.environ.get("ILLADA_LIBRARY")
    if env:
        return [Path(env)], True
    lib = Path(__file__).resolve().parent.parent.parent / "lib"
    return [lib / f"libillada.so.{ABI_VERSION}", lib / "libillada.so"], False


def _load():
    paths, from_env = _candidates()
    for path in paths:
        if path.exists():
            try:
                lib = ctypes.CDLL(str(path))
            except OSError as e:
                raise ImportError(f"illada: cannot load {path}: {e}") from None
            break
    else:
        where = "$ILLADA_LIBRARY" if from_env else "the install tree"
        raise ImportError(
            f"illada: libillada.so not found in {where} (looked for {', '.join(map(str, paths))}); "
            "set ILLADA_LIBRARY to the library's path")
    for name, (restype, argtypes) in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    abi = lib.illada_abi_version()
    if abi != ABI_VERSION:
        raise ImportError(f"illada: {path} has ABI version {abi}, this package expects {ABI_VERSION}: "
                          "install matching versions of the library and the Python package")
    for cname, struct in _STRUCTS.items():
        size = lib.illada_struct_size(cname.encode())
        if size != ctypes.sizeof(struct):
            raise ImportError(f"illada: {path}: sizeof({cname}) is {size}, the Python declaration has "
                              f"{ctypes.sizeof(struct)}: the library and the package do not match")
    return lib, path


lib, library_path = _load()
