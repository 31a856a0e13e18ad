"""illada.Model: loading, generation, streaming, scoring and logits over the C API."""

import ctypes
import logging
import math
import queue
import threading
import weakref

from . import _lib
from ._lib import lib

try:  # numpy is optional: logits come back as an array when it is importable
    import numpy as _np
except ImportError:  # pragma: no cover - exercised by the test run that hides numpy
    _np = None

_LOG = logging.getLogger("illada")
_LOG_LEVELS = {0: logging.ERROR, 1: logging.WARNING, 2: logging.INFO, 3: logging.DEBUG}
_DTYPES = {"bf16": 0, "f32": 1}
_REMASKING = {"low_confidence": 0, "random": 1, "margin": 2, "entropy": 3}
_CACHES = {"none": 0, "prefix": 1, "dual": 2}
_METHODS = {"confidence": 0, "likelihood": 1}


class IlladaError(Exception):
    """An error reported by the illada library; `status` is the C status name
    (e.g. "ILLADA_ERROR_INVALID_ARGUMENT")."""

    def __init__(self, message, status="ILLADA_ERROR_INVALID_ARGUMENT"):
        super().__init__(message)
        self.status = status


class InvalidArgumentError(IlladaError, ValueError):
    """A bad option, token id or prompt (also a ValueError)."""


class LoadError(IlladaError, OSError):
    """The model or its tokenizer could not be loaded (also an OSError)."""


class NoTokenizerError(IlladaError):
    """Text was given to a model that has no tokenizer: give token ids instead."""


class CancelledError(IlladaError):
    """A callback asked the library to stop."""


_ERRORS = {
    1: InvalidArgumentError,
    2: LoadError,
    3: NoTokenizerError,
    4: MemoryError,
    5: CancelledError,
}


def _raise(status, message):
    name = lib.illada_status_name(status).decode()
    cls = _ERRORS.get(status, IlladaError)
    if cls is MemoryError:
        raise MemoryError(message)
    raise cls(message, name)


def _log_callback(log):
    """The C log callback for `log`: callable(level, message), or None for the `logging` logger
    "illada" (errors excepted: they reach Python as exceptions)."""

    def on_log(level, message, _user):
        text = message.decode("utf-8", "replace")
        if log is None:
            if level != 0:
                _LOG.log(_LOG_LEVELS.get(level, logging.INFO), text)
        else:
            try:
                log(("error", "warning", "info", "debug")[level] if 0 <= level <= 3 else "info", text)
            except Exception:  # a logger must not break the call
                _LOG.exception("illada: the log callback raised")

    return _lib.LOG_CALLBACK(on_log)


def _progress_callback(on_progress, failure):
    """The C progress callback for on_progress(done, total) (True stops the call), or None. An
    exception it raises stops the call too and is appended to `failure`, for the caller to raise
    once the C call has returned. Keep the result alive for the duration of the call."""
    if on_progress is None:
        return None

    def progress_cb(done, total, _user):
        try:
            return 1 if on_progress(done, total) else 0
        except BaseException as e:
            failure.append(e)
            return 1

    return _lib.PROGRESS_CALLBACK(progress_cb)


def quantize(path, out, type="q8_0", tensor_types=(), name=None, threads=None, on_progress=None, log=None):
    """Writes the model at `path` (a Hugging Face style directory or a LLaDA GGUF file) as the
    GGUF file `out`, with the bytes `illada quantize` writes (docs/gguf.md).

    type: "q8_0" (default), "q4_0", "q4_k", "q6_k", "q4_k_m", "f32", "f16" or "bf16".
    tensor_types: "PATTERN=TYPE" overrides (a regular expression searched in the lower-cased
    GGUF tensor name; the first match wins). name: general.name for a directory (default: its
    name). threads: compute threads (None: the OpenMP default). on_progress(done, total) before
    each tensor; returning True stops with CancelledError. log: as Model.load's. The file appears
    whole or not at all. Raises InvalidArgumentError for bad options, LoadError for a model that
    cannot be read or converted (a NaN weight, say).
    """
    params = lib.illada_quantize_default_params()
    params.type = _bytes(type, "type")
    if isinstance(tensor_types, (str, bytes)):
        raise InvalidArgumentError("tensor_types must be a list of \"PATTERN=TYPE\" strings")
    overrides = [_bytes(t, "a tensor_types entry") for t in tensor_types]
    arr = (ctypes.c_char_p * max(1, len(overrides)))(*overrides)
    params.tensor_types = arr
    params.n_tensor_types = len(overrides)
    if name is not None:
        params.name = _bytes(name, "name")
    params.n_threads = 0 if threads is None else _int(threads, "threads", 1)
    failure = []
    progress = _progress_callback(on_progress, failure)
    if progress is not None:
        params.progress_callback = progress
    log_cb = _log_callback(log)
    params.log_callback = log_cb
    error = ctypes.create_string_buffer(4096)
    status = lib.illada_quantize(_bytes(str(path), "path"), _bytes(str(out), "out"), ctypes.byref(params), error,
                                 len(error))
    if failure:
        raise failure[0]
    if status != 0:
        _raise(status, error.value.decode("utf-8", "replace"))


def _bytes(text, what):
    if isinstance(text, bytes):
        return text
    if not isinstance(text, str):
        raise InvalidArgumentError(f"{what} must be a str, got {type(text).__name__}")
    return text.encode("utf-8")


def _int(value, what, minimum=None):
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            if _np is not None and isinstance(value, _np.integer):
                value = int(value)
            else:
                raise TypeError
        except TypeError:
            raise InvalidArgumentError(f"{what} must be an integer, got {value!r}") from None
    if minimum is not None and value < minimum:
        raise InvalidArgumentError(f"{what} must be >= {minimum}, got {value}")
    return value


def _float(value, what):
    if isinstance(value, bool):
        raise InvalidArgumentError(f"{what} must be a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{what} must be a number, got {value!r}") from None


def _choice(value, table, what):
    if value not in table:
        raise InvalidArgumentError(f"{what} must be one of {', '.join(table)}, got {value!r}")
    return table[value]


def _id_array(ids, what):
    if isinstance(ids, (str, bytes)):
        raise InvalidArgumentError(f"{what} must be a sequence of token ids, got a string")
    try:
        values = [_int(i, f"{what}: a token id") for i in ids]
    except TypeError:
        raise InvalidArgumentError(f"{what} must be a sequence of token ids, got {ids!r}") from None
    for i in values:
        if not -2**31 <= i < 2**31:
            raise InvalidArgumentError(f"{what}: token id {i} is out of range")
    return (_lib.c_token * max(1, len(values)))(*values), len(values)


def _is_batch_of_ids(x):
    return isinstance(x, (list, tuple)) and len(x) > 0 and all(
        not isinstance(e, (int, str, bytes)) and hasattr(e, "__len__") for e in x)


class _Context:
    """A C context for one call (contexts are cheap; one per call lets threads share a Model)."""

    def __init__(self, model):
        self.model = model
        self.handle = ctypes.c_void_p()
        model._enter()
        status = lib.illada_context_new(model._handle, None, ctypes.byref(self.handle))
        if status != 0:
            model._leave()
            _raise(status, f"illada_context_new failed ({lib.illada_status_name(status).decode()})")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        lib.illada_context_free(self.handle)
        self.handle = None
        self.model._leave()

    def check(self, status):
        if status != 0:
            _raise(status, lib.illada_context_error(self.handle).decode("utf-8", "replace"))


class Tokenizer:
    """The model's tokenizer (Hugging Face tokenizer.json, encoded exactly as `tokenizers`).
    With a model that has none, every method raises NoTokenizerError."""

    def __init__(self, model):
        self._model = model

    @property
    def available(self):
        """True when the model was loaded with a tokenizer."""
        return bool(lib.illada_model_has_tokenizer(self._model._live()))

    def encode(self, text, add_special_tokens=True):
        """Token ids of `text` (str or bytes); add_special_tokens adds what the tokenizer's
        post-processor adds (a BOS, for instance)."""
        data = _bytes(text, "text")
        out, n = ctypes.POINTER(_lib.c_token)(), ctypes.c_size_t()
        with _Context(self._model) as ctx:
            ctx.check(lib.illada_tokenize(ctx.handle, data, len(data), int(bool(add_special_tokens)),
                                          ctypes.byref(out), ctypes.byref(n)))
        try:
            return out[:n.value]
        finally:
            lib.illada_free(out)

    def decode_bytes(self, ids, skip_special_tokens=False):
        """The raw bytes of `ids` (byte-level tokens may split a UTF-8 character)."""
        arr, n = _id_array(ids, "ids")
        out, length = ctypes.POINTER(ctypes.c_char)(), ctypes.c_size_t()
        with _Context(self._model) as ctx:
            ctx.check(lib.illada_detokenize(ctx.handle, arr, n, int(bool(skip_special_tokens)), ctypes.byref(out),
                                            ctypes.byref(length)))
        try:
            return ctypes.string_at(out, length.value)
        finally:
            lib.illada_free(out)

    def decode(self, ids, skip_special_tokens=False):
        """Text of `ids`; bytes that are not valid UTF-8 become U+FFFD."""
        return self.decode_bytes(ids, skip_special_tokens).decode("utf-8", "replace")

    def token_to_id(self, token):
        """The id of one token's text, or None when the vocabulary has none."""
        out = _lib.c_token()
        with _Context(self._model) as ctx:
            ctx.check(lib.illada_token_lookup(ctx.handle, _bytes(token, "token"), ctypes.byref(out)))
        return None if out.value < 0 else out.value

    def apply_chat_template(self, messages, template=None, add_generation_prompt=True):
        """The conversation `messages` ([{"role": ..., "content": ...}, ...]) rendered with the
        model's chat template, or the one named ("llada", "llama3", "none"). Encode the result
        with add_special_tokens=False."""
        msgs, keep = _messages(messages)
        out, length = ctypes.POINTER(ctypes.c_char)(), ctypes.c_size_t()
        with _Context(self._model) as ctx:
            ctx.check(lib.illada_chat_apply(ctx.handle, msgs, len(keep) // 2,
                                            None if template is None else _bytes(template, "template"),
                                            int(bool(add_generation_prompt)), ctypes.byref(out),
                                            ctypes.byref(length)))
        try:
            return ctypes.string_at(out, length.value).decode("utf-8", "replace")
        finally:
            lib.illada_free(out)


def _messages(messages):
    if isinstance(messages, (str, bytes)) or not hasattr(messages, "__iter__"):
        raise InvalidArgumentError("messages must be a list of {'role': ..., 'content': ...} dicts")
    keep = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise InvalidArgumentError(f"messages[{i}] must be a dict with 'role' and 'content'")
        keep += [_bytes(m["role"], f"messages[{i}]['role']"), _bytes(m["content"], f"messages[{i}]['content']")]
    arr = (_lib.ChatMessage * max(1, len(keep) // 2))()
    for i in range(len(keep) // 2):
        arr[i].role, arr[i].content = keep[2 * i], keep[2 * i + 1]
    return arr, keep


class Stream:
    """Iterator over the steps of one generation (see Model.stream). Each step is a dict:
    request, block, step, canvas (ids, prompt included; masked positions hold the mask id),
    prompt_length, committed (canvas positions committed in this step). Once the iteration
    ends, `result` holds what Model.generate would have returned. Closing the stream (or
    leaving a `with` block, or breaking out of a for loop and dropping it) cancels the rest."""

    _DONE = object()

    def __init__(self, run, max_pending):
        self._queue = queue.Queue(maxsize=max_pending)
        self._stop = threading.Event()
        self._error = None
        self.result = None
        self._thread = threading.Thread(target=self._work, args=(run,), daemon=True)
        self._thread.start()

    def _work(self, run):
        try:
            self.result = run(self._on_step)
        except BaseException as e:  # handed to the consumer
            self._error = e
        finally:
            self._put(self._DONE, force=True)

    def _put(self, item, force=False):
        while True:
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                if self._stop.is_set() and not force:
                    return False
                if self._stop.is_set():  # closing: make room for the end marker
                    try:
                        self._queue.get_nowait()
                    except queue.Empty:
                        pass

    def _on_step(self, step):
        if self._stop.is_set():
            return True
        return not self._put(step)

    def __iter__(self):
        return self

    def __next__(self):
        if self._thread is None:
            raise StopIteration
        item = self._queue.get()
        if item is self._DONE:
            self._thread.join()
            self._thread = None
            if self._error is not None:
                raise self._error
            raise StopIteration
        return item

    def close(self):
        """Cancels what is left of the generation and waits for it to stop."""
        if self._thread is None:
            return
        self._stop.set()
        while self._queue.get() is not self._DONE:
            pass
        self._thread.join()
        self._thread = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


class Model:
    """A loaded LLaDA / iLLaDA model. Thread-safe: several Python threads may generate on one
    Model at the same time (each call runs in its own C context, without the GIL)."""

    def __init__(self, handle, path, log):
        self._handle = handle
        self.path = path
        self._log = log  # keeps the ctypes callback alive as long as the model
        self.tokenizer = Tokenizer(self)
        # Calls in flight (their C contexts use the model) and open streams: close() waits
        # for the first and cancels the second before it frees the weights.
        self._calls = {}  # thread id -> calls of that thread in flight
        self._idle = threading.Condition()
        self._streams = weakref.WeakSet()

    @classmethod
    def load(cls, path, dtype="bf16", threads=None, tokenizer=None, pack_weights=True, check_tensors=False,
             log=None):
        """Loads a Hugging Face style directory (config.json, safetensors, tokenizer.json) or a
        LLaDA GGUF file.

        dtype: "bf16" (fast) or "f32" (reference numerics). threads: compute threads (None: the
        OpenMP default, $OMP_NUM_THREADS or all cores). tokenizer: a tokenizer.json directory or
        file instead of the model's own ("" for none; a model without one works on ids).
        pack_weights (bf16): True (default) repacks long rows in 512-column chunks, which
        batch-invariant generation reads directly; "whole" packs them whole (a few percent faster
        scoring; batch-invariant generation then reads the plain weights again); False: plain.
        log: callable(level, message) for the library's messages (level "error", "warning",
        "info" or "debug"); None sends them to the `logging` logger "illada" (errors excepted:
        they are raised as exceptions). Raises LoadError (an OSError) when the model cannot be loaded.
        """
        params = lib.illada_model_default_params()
        params.dtype = _choice(dtype, _DTYPES, "dtype")
        params.n_threads = 0 if threads is None else _int(threads, "threads", 1)
        if tokenizer is not None:
            params.tokenizer_path = _bytes(str(tokenizer), "tokenizer")
        if pack_weights == "whole":
            params.pack_weights = 2
        elif not isinstance(pack_weights, str) and pack_weights in (0, 1):
            params.pack_weights = int(pack_weights)
        else:
            raise ValueError(f"pack_weights must be True, False or \"whole\", not {pack_weights!r}")
        params.check_tensors = int(bool(check_tensors))

        callback = _log_callback(log)
        params.log_callback = callback
        handle = ctypes.c_void_p()
        error = ctypes.create_string_buffer(4096)
        status = lib.illada_model_load(_bytes(str(path), "path"), ctypes.byref(params), ctypes.byref(handle), error,
                                       len(error))
        if status != 0:
            _raise(status, error.value.decode("utf-8", "replace"))
        return cls(handle, str(path), callback)

    def close(self):
        """Frees the model now (it is also freed when garbage-collected). Open streams are
        cancelled, and calls running in other threads are waited for."""
        if not getattr(self, "_handle", None):
            return
        for stream in list(self._streams):
            stream.close()
        with self._idle:
            if threading.get_ident() in self._calls:
                raise IlladaError("close() from a callback of a call on this model would wait for itself",
                                  "ILLADA_ERROR_INVALID_ARGUMENT")
            handle, self._handle = self._handle, None  # new calls now fail
            self._idle.wait_for(lambda: not self._calls)
        lib.illada_model_free(handle)

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass

    def _enter(self):
        with self._idle:
            self._live()
            me = threading.get_ident()
            self._calls[me] = self._calls.get(me, 0) + 1

    def _leave(self):
        with self._idle:
            me = threading.get_ident()
            self._calls[me] -= 1
            if not self._calls[me]:
                del self._calls[me]
            self._idle.notify_all()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _live(self):
        if not self._handle:
            raise IlladaError("the model was closed", "ILLADA_ERROR_INVALID_ARGUMENT")
        return self._handle

    @property
    def n_vocab(self):
        """Logits per position (the embedding size)."""
        return lib.illada_model_n_vocab(self._live())

    @property
    def max_sequence_length(self):
        return lib.illada_model_max_sequence_length(self._live())

    @property
    def n_params(self):
        return lib.illada_model_n_params(self._live())

    @property
    def mask_token_id(self):
        return lib.illada_model_mask_token(self._live())

    @property
    def eos_token_id(self):
        return lib.illada_model_eos_token(self._live())

    @property
    def dtype(self):
        return "f32" if lib.illada_model_dtype(self._live()) == 1 else "bf16"

    @property
    def has_tokenizer(self):
        return bool(lib.illada_model_has_tokenizer(self._live()))

    # ------------------------------------------------------------------------- prompts

    def _prompt_params(self, chat, chat_template, system):
        pp = lib.illada_prompt_default_params()
        pp.chat = int(bool(chat))
        pp.chat_template = None if chat_template is None else _bytes(chat_template, "chat_template")
        pp.system = None if system is None else _bytes(system, "system")
        return pp

    def encode_prompt(self, prompt, chat=False, chat_template=None, system=None):
        """Ids of a text prompt exactly as `illada generate --prompt` makes them: the text with
        special tokens, or with chat=True the user message (after `system`, if given) in the
        chat template."""
        pp = self._prompt_params(chat, chat_template, system)
        out, n = ctypes.POINTER(_lib.c_token)(), ctypes.c_size_t()
        with _Context(self) as ctx:
            ctx.check(lib.illada_prompt_encode(ctx.handle, _bytes(prompt, "prompt"), ctypes.byref(pp),
                                               ctypes.byref(out), ctypes.byref(n)))
        try:
            return out[:n.value]
        finally:
            lib.illada_free(out)

    def _prompts(self, prompt, prompt_ids, messages, chat, chat_template, system):
        """(list of id lists, batch?)"""
        given = [x is not None for x in (prompt, prompt_ids, messages)]
        if sum(given) != 1:
            raise InvalidArgumentError("give exactly one of prompt (text), prompt_ids (token ids) or messages")
        if prompt_ids is not None:
            if _is_batch_of_ids(prompt_ids):
                return [list(p) for p in prompt_ids], True
            return [list(prompt_ids)], False
        if messages is not None:
            text = self.tokenizer.apply_chat_template(messages, chat_template)
            return [self.tokenizer.encode(text, add_special_tokens=False)], False
        if isinstance(prompt, (list, tuple)):
            return [self.encode_prompt(p, chat, chat_template, system) for p in prompt], True
        return [self.encode_prompt(prompt, chat, chat_template, system)], False

    # ---------------------------------------------------------------------- generation

    def _generate_params(self, gen_length=None, block_length=None, steps=None, temperature=0.0,
                         remasking="low_confidence", cfg_scale=0.0, variable_length=False, stop=None,
                         stop_tokens=None, end_think_boost=0.0, end_think_power=2.0, end_think_text=None,
                         threshold=None, factor=None, cache="none", logits_eos_inf=False,
                         confidence_eos_eot_inf=False, allow_mask_prediction=False, seed=0):
        p = lib.illada_generate_default_params()
        keep = []
        p.gen_length = 0 if gen_length is None else _int(gen_length, "gen_length", 1)
        p.block_length = 0 if block_length is None else _int(block_length, "block_length", 1)
        p.steps = 0 if steps is None else _int(steps, "steps", 1)
        p.temperature = _float(temperature, "temperature")
        p.remasking = _choice(remasking, _REMASKING, "remasking")
        p.cfg_scale = _float(cfg_scale, "cfg_scale")
        p.variable_length = int(bool(variable_length))
        if stop is not None:
            stops = [stop] if isinstance(stop, (str, bytes)) else list(stop)
            arr = (ctypes.c_char_p * max(1, len(stops)))(*[_bytes(s, "stop") for s in stops])
            keep.append(arr)
            p.stop_strings, p.n_stop_strings = ctypes.cast(arr, ctypes.POINTER(ctypes.c_char_p)), len(stops)
        if stop_tokens is not None:
            arr, n = _id_array(stop_tokens, "stop_tokens")
            keep.append(arr)
            p.stop_tokens, p.n_stop_tokens = ctypes.cast(arr, ctypes.POINTER(_lib.c_token)), n
        p.end_think_boost = _float(end_think_boost, "end_think_boost")
        p.end_think_power = _float(end_think_power, "end_think_power")
        if end_think_text is not None:
            p.end_think_text = _bytes(end_think_text, "end_think_text")
        if threshold is not None:
            p.threshold = _float(threshold, "threshold")
            if p.threshold < 0 or math.isnan(p.threshold):
                raise InvalidArgumentError(f"threshold must be in [0, 1], got {threshold!r}")
        if factor is not None:
            p.factor = _float(factor, "factor")
            if not p.factor > 0:
                raise InvalidArgumentError(f"factor must be > 0, got {factor!r}")
        p.cache = _choice(cache, _CACHES, "cache")
        p.logits_eos_inf = int(bool(logits_eos_inf))
        p.confidence_eos_eot_inf = int(bool(confidence_eos_eot_inf))
        p.allow_mask_prediction = int(bool(allow_mask_prediction))
        p.seed = _int(seed, "seed", 0)
        return p, keep

    def _run_generate(self, prompts, params, on_step):
        arrays = [_id_array(p, f"prompt {i}") for i, p in enumerate(prompts)]
        toks = (_lib.Tokens * len(prompts))(*[_lib.Tokens(a, n) for a, n in arrays])
        results = (_lib.Generation * len(prompts))()
        failure = []
        callback = None
        if on_step is not None:
            def step_cb(step_ptr, _user):
                if failure:
                    return 1
                s = step_ptr.contents
                try:
                    stop = on_step({
                        "request": s.request,
                        "block": s.block,
                        "step": s.step,
                        "canvas": s.canvas[:s.canvas_length],
                        "prompt_length": s.prompt_length,
                        "committed": s.committed[:s.n_committed],
                    })
                except BaseException as e:  # re-raised once the C call returns
                    failure.append(e)
                    return 1
                return 1 if stop else 0

            callback = _lib.STEP_CALLBACK(step_cb)
            params.step_callback = callback
        with _Context(self) as ctx:
            status = lib.illada_generate(ctx.handle, toks, len(prompts), ctypes.byref(params), results)
            if failure:
                lib.illada_generation_clear(results, len(prompts))
                raise failure[0]
            ctx.check(status)
        try:
            out = []
            for r in results:
                text = None
                if r.text:
                    text = ctypes.string_at(r.text, r.text_length).decode("utf-8", "replace")
                out.append({"ids": r.ids[:r.n_ids], "text": text, "nfe": r.nfe, "answer_length": r.answer_length,
                            "stopped": bool(r.stopped), "cancelled": bool(r.cancelled)})
            return out
        finally:
            lib.illada_generation_clear(results, len(prompts))

    def generate(self, prompt=None, prompt_ids=None, *, messages=None, chat=False, chat_template=None, system=None,
                 on_step=None, **options):
        """Generates by masked diffusion and returns dict(ids, text, nfe, answer_length, stopped,
        cancelled); for a batch (prompt a list of str, or prompt_ids a list of id lists) a list
        of them, the prompts packed into shared forward passes.

        The prompt: `prompt` (text; chat=True wraps it in the chat template, after `system`),
        `prompt_ids` (token ids; works without a tokenizer) or `messages` (a conversation).
        Options, as `illada generate`'s flags: gen_length, block_length, steps (None: derived as
        the CLI does), temperature, remasking ("low_confidence", "random", "margin",
        "entropy"), cfg_scale, variable_length, stop (str or list; EOS and <|eot_id|> always
        stop), stop_tokens, end_think_boost, end_think_power, end_think_text, threshold,
        factor, cache ("none", "prefix", "dual"), logits_eos_inf, confidence_eos_eot_inf,
        allow_mask_prediction, seed. on_step(step_dict) is called after every step; returning
        True stops that request (its result then has cancelled=True). `text` is None without a
        tokenizer.
        """
        prompts, batch = self._prompts(prompt, prompt_ids, messages, chat, chat_template, system)
        params, keep = self._generate_params(**options)
        results = self._run_generate(prompts, params, on_step)
        del keep
        return results if batch else results[0]

    def stream(self, prompt=None, prompt_ids=None, *, messages=None, chat=False, chat_template=None, system=None,
               max_pending=64, **options):
        """As generate(), but returns a Stream that yields each step as a dict (request, block,
        step, canvas, prompt_length, committed) while the model runs in a background thread;
        `stream.result` then holds generate()'s return value. At most `max_pending` steps wait
        for the consumer (the model pauses beyond). Closing the stream cancels the rest.

            s = model.stream("Hello", gen_length=32)
            for step in s:
                print(step["step"], step["committed"])
            print(s.result["text"])
        """
        prompts, batch = self._prompts(prompt, prompt_ids, messages, chat, chat_template, system)
        params, keep = self._generate_params(**options)

        def run(on_step):
            results = self._run_generate(prompts, params, on_step)
            keep.clear()
            return results if batch else results[0]

        stream = Stream(run, max(1, _int(max_pending, "max_pending", 1)))
        self._streams.add(stream)
        return stream

    # ------------------------------------------------------------------------- scoring

    def score(self, prompt=None, choices=None, *, prompt_ids=None, choice_ids=None, method="confidence",
              normalize=False, mc_num=128, mc_batch_size=None, cfg_scale=0.0, append_eos=False, add_bos=False,
              seed=0, chat=False, chat_template=None, system=None, on_progress=None):
        """Scores answer choices for a prompt, as `illada score`; returns one float per choice
        (higher is better).

        Text: score("The sky is", ["blue", "green"]) splits context and " choice" as
        lm-evaluation-harness does (chat=True: the prompt in the chat template, each choice
        encoded alone). Ids: score(prompt_ids=[...], choice_ids=[[...], ...]).
        method: "confidence" (iLLaDA; normalize divides by the choice's length) or "likelihood"
        (LLaDA's Monte-Carlo estimate: mc_num samples, mc_batch_size per forward pass, seed).
        cfg_scale, append_eos (eval_illada.py padd_eos), add_bos (text: a BOS first unless the
        tokenizer adds one). on_progress(done, total) after each likelihood batch; returning
        True stops with CancelledError.
        """
        sp = lib.illada_score_default_params()
        sp.method = _choice(method, _METHODS, "method")
        sp.normalize = int(bool(normalize))
        sp.mc_num = _int(mc_num, "mc_num", 1)
        sp.mc_batch_size = 0 if mc_batch_size is None else _int(mc_batch_size, "mc_batch_size", 1)
        sp.cfg_scale = _float(cfg_scale, "cfg_scale")
        sp.append_eos = int(bool(append_eos))
        sp.add_bos = int(bool(add_bos))
        sp.seed = _int(seed, "seed", 0)
        failure = []
        callback = _progress_callback(on_progress, failure)
        if callback is not None:
            sp.progress_callback = callback
        if (prompt is None) == (prompt_ids is None):
            raise InvalidArgumentError("give the prompt as text (prompt) or as ids (prompt_ids), one of them")
        if (choices is None) == (choice_ids is None):
            raise InvalidArgumentError("give the choices as text (choices) or as ids (choice_ids), one of them")
        if isinstance(choices, (str, bytes)):
            raise InvalidArgumentError("choices must be a list of strings")
        n = len(choices if choices is not None else choice_ids)
        scores = (ctypes.c_double * max(1, n))()
        with _Context(self) as ctx:
            if prompt is not None and choices is not None:
                pp = self._prompt_params(chat, chat_template, system)
                texts = [_bytes(c, "a choice") for c in choices]
                arr = (ctypes.c_char_p * max(1, n))(*texts)
                status = lib.illada_score_text(ctx.handle, _bytes(prompt, "prompt"), arr, n, ctypes.byref(pp),
                                               ctypes.byref(sp), scores)
            else:
                if choice_ids is None:
                    raise InvalidArgumentError("text choices need a text prompt; with prompt_ids give choice_ids")
                if prompt is not None:
                    if add_bos:
                        raise InvalidArgumentError("add_bos applies to text choices; put the BOS id in choice_ids' prompt")
                    ids = self.encode_prompt(prompt, chat, chat_template, system)
                else:
                    ids = prompt_ids
                parr, pn = _id_array(ids, "prompt_ids")
                carrs = [_id_array(c, f"choice_ids[{i}]") for i, c in enumerate(choice_ids)]
                toks = (_lib.Tokens * max(1, n))(*[_lib.Tokens(a, k) for a, k in carrs])
                status = lib.illada_score(ctx.handle, _lib.Tokens(parr, pn), toks, n, ctypes.byref(sp), scores)
            if failure:
                raise failure[0]
            ctx.check(status)
        return list(scores[:n])

    # -------------------------------------------------------------------------- logits

    def logits(self, ids):
        """One forward pass over `ids`: logits [len(ids), n_vocab] as a float32 numpy array
        when numpy is importable, else a list of lists of floats."""
        arr, n = _id_array(ids, "ids")
        vocab = self.n_vocab
        if _np is not None:
            out = _np.empty((n, vocab), dtype=_np.float32)
            ptr = out.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        else:
            out = (ctypes.c_float * max(1, n * vocab))()
            ptr = out
        with _Context(self) as ctx:
            ctx.check(lib.illada_logits(ctx.handle, arr, n, ptr, n * vocab))
        if _np is not None:
            return out
        return [out[r * vocab:(r + 1) * vocab] for r in range(n)]
