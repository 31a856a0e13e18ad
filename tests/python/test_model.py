"""The installed Python package against the installed `illada` program: generate, stream, score,
logits and the tokenizer give the CLI's results; errors surface as exceptions."""

import os
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import support
from support import IDS_MODEL, cli, ids_arg, text_model

import illada

EXPECT_NUMPY = os.environ.get("ILLADA_TEST_NUMPY")


def setUpModule():
    global IDS, TEXT
    IDS = illada.Model.load(IDS_MODEL, dtype="f32")
    TEXT = illada.Model.load(text_model(), dtype="f32")


def tearDownModule():
    IDS.close()
    TEXT.close()


def flags(options):
    """Python keyword options as the CLI's flags (same names, '-' for '_')."""
    out = []
    for k, v in options.items():
        flag = "--" + k.replace("_", "-")
        if k == "stop":
            for s in ([v] if isinstance(v, str) else v):
                out += [flag, s]
        elif v is True:
            out.append(flag)
        else:
            out += [flag, v]
    return out


class InstalledPackage(unittest.TestCase):
    def test_package_and_library_come_from_the_prefix(self):
        prefix = os.path.realpath(support.PREFIX)
        self.assertTrue(os.path.realpath(illada.__file__).startswith(os.path.join(prefix, "python", "illada")))
        self.assertTrue(os.path.realpath(str(illada.library_path)).startswith(os.path.join(prefix, "lib")))
        self.assertEqual(illada.__version__, "0.1.0")
        self.assertEqual(illada.ABI_VERSION, 1)

    def test_missing_library_is_a_clear_import_error(self):
        env = dict(os.environ, ILLADA_LIBRARY="/no/such/libillada.so")
        out = subprocess.run([sys.executable, "-c", "import illada"], capture_output=True, text=True, env=env)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("ImportError", out.stderr)
        self.assertIn("/no/such/libillada.so", out.stderr)
        self.assertIn("ILLADA_LIBRARY", out.stderr)

    def test_library_named_by_environment(self):
        # The package from the source tree (no lib/ beside it) with the installed library.
        lib = os.path.join(support.PREFIX, "lib", "libillada.so.1")
        env = dict(os.environ, ILLADA_LIBRARY=lib, PYTHONPATH=os.path.join(support.SOURCE, "python"))
        code = "import illada; print(illada.__file__); print(illada.library_path)"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
        package, library = out.stdout.split()
        self.assertTrue(package.startswith(os.path.join(support.SOURCE, "python")))
        self.assertEqual(library, lib)

    def test_gguf_file(self):
        with tempfile.TemporaryDirectory() as d:
            for name, model in (("ids.gguf", IDS_MODEL), ("text.gguf", text_model())):
                cli("quantize", "--model", model, "--type", "f32", "--out", os.path.join(d, name))
            with illada.Model.load(os.path.join(d, "ids.gguf"), dtype="f32") as m:
                self.assertFalse(m.has_tokenizer)
                self.assertEqual(m.generate(prompt_ids=[1, 2, 3], gen_length=16, block_length=8)["ids"],
                                 IDS.generate(prompt_ids=[1, 2, 3], gen_length=16, block_length=8)["ids"])
            path = os.path.join(d, "text.gguf")
            with illada.Model.load(path, dtype="f32") as m:
                self.assertTrue(m.has_tokenizer)  # the vocabulary the file carries
                out = m.generate("hello world", gen_length=16, block_length=8)
            ref = cli("generate", "--model", path, "--prompt", "hello world", "--gen-length", 16, "--block-length", 8,
                      "--dtype", "f32", "--format", "json")
            self.assertEqual(out["ids"], ref["ids"])
            self.assertEqual(out["text"], ref["text"])

    def test_quantize_writes_the_cli_bytes(self):
        with tempfile.TemporaryDirectory() as d:
            mine, ref = os.path.join(d, "py.gguf"), os.path.join(d, "cli.gguf")
            seen, messages = [], []
            illada.quantize(text_model(), mine, type="q4_k_m", tensor_types=["attn_v=q8_0"], threads=1,
                            on_progress=lambda done, total: seen.append((done, total)),
                            log=lambda level, message: messages.append((level, message)))
            cli("quantize", "--model", text_model(), "--type", "q4_k_m", "--tensor-type", "attn_v=q8_0", "--out", ref,
                "--quiet")
            with open(mine, "rb") as a, open(ref, "rb") as b:
                self.assertEqual(a.read(), b.read())
            self.assertEqual(seen, [(i, len(seen)) for i in range(len(seen))])
            self.assertTrue(seen)
            self.assertEqual(messages[-1][0], "info")
            self.assertIn("q4_k_m", messages[-1][1])
            with illada.Model.load(mine) as m:
                self.assertTrue(m.has_tokenizer)
                self.assertEqual(len(m.generate("hello", gen_length=8, block_length=8)["ids"]), 8)
            with self.assertRaisesRegex(illada.InvalidArgumentError, "type 'q3_k'"):
                illada.quantize(IDS_MODEL, os.path.join(d, "bad.gguf"), type="q3_k")
            with self.assertRaisesRegex(illada.InvalidArgumentError, r"tensor_types\[0\]"):
                illada.quantize(IDS_MODEL, os.path.join(d, "bad.gguf"), tensor_types=["no equals sign"])
            with self.assertRaisesRegex(illada.LoadError, "/no/such/model"):
                illada.quantize("/no/such/model", os.path.join(d, "bad.gguf"))
            with self.assertRaises(illada.CancelledError):
                illada.quantize(IDS_MODEL, os.path.join(d, "bad.gguf"), on_progress=lambda done, total: done == 1)
            with self.assertRaises(ZeroDivisionError):  # the callback's own exception comes through
                illada.quantize(IDS_MODEL, os.path.join(d, "bad.gguf"), on_progress=lambda done, total: 1 / 0)
            self.assertFalse(os.path.exists(os.path.join(d, "bad.gguf")))

    def test_model_properties(self):
        self.assertEqual(IDS.n_vocab, 128)
        self.assertEqual(IDS.max_sequence_length, 256)
        self.assertEqual(IDS.mask_token_id, 5)
        self.assertEqual(IDS.eos_token_id, 1)
        self.assertEqual(IDS.dtype, "f32")
        self.assertFalse(IDS.has_tokenizer)
        self.assertTrue(TEXT.has_tokenizer)
        self.assertGreater(IDS.n_params, 0)


class Generate(unittest.TestCase):
    def test_ids_equal_cli(self):
        out = IDS.generate(prompt_ids=[1, 2, 3], gen_length=32, block_length=8, steps=16)
        ref = cli("generate", "--model", IDS_MODEL, "--prompt-ids", "1,2,3", "--gen-length", 32, "--block-length", 8,
                  "--steps", 16, "--dtype", "f32", "--format", "json")
        self.assertEqual(out["ids"], ref["ids"])
        self.assertEqual(out["nfe"], ref["nfe"])
        self.assertIsNone(out["text"])

    def test_defaults_equal_cli_in_bf16(self):
        with illada.Model.load(IDS_MODEL) as m:  # bf16 by default, lengths derived
            self.assertEqual(m.dtype, "bf16")
            out = m.generate(prompt_ids=[4, 5, 6, 7])
        ref = cli("generate", "--model", IDS_MODEL, "--prompt-ids", "4,5,6,7", "--format", "json")
        self.assertEqual(len(out["ids"]), 128)
        self.assertEqual(out["ids"], ref["ids"])
        self.assertEqual(out["nfe"], ref["nfe"])

    def test_whole_packing_generates_the_same_ids(self):
        with illada.Model.load(IDS_MODEL, pack_weights="whole") as m:
            whole = m.generate(prompt_ids=[4, 5, 6, 7], gen_length=16, block_length=8, steps=8)
        with illada.Model.load(IDS_MODEL) as m:
            chunks = m.generate(prompt_ids=[4, 5, 6, 7], gen_length=16, block_length=8, steps=8)
        self.assertEqual(len(whole["ids"]), 16)
        self.assertEqual(whole["ids"], chunks["ids"])
        with self.assertRaises(ValueError):
            illada.Model.load(IDS_MODEL, pack_weights="chunks")

    def test_text_prompt_equal_cli(self):
        out = TEXT.generate("hello world", gen_length=32, block_length=8, steps=16)
        ref = cli("generate", "--model", text_model(), "--prompt", "hello world", "--gen-length", 32,
                  "--block-length", 8, "--steps", 16, "--dtype", "f32", "--format", "json")
        self.assertEqual(out["ids"], ref["ids"])
        self.assertEqual(out["text"], ref["text"])

    def test_chat_equal_cli(self):
        out = TEXT.generate("what is a cat?", chat=True, system="be brief", gen_length=32, block_length=8,
                            variable_length=True)
        ref = cli("generate", "--model", text_model(), "--prompt", "what is a cat?", "--chat", "--system", "be brief",
                  "--gen-length", 32, "--block-length", 8, "--variable-length", "--dtype", "f32", "--format", "json")
        self.assertEqual(out["ids"], ref["ids"])
        self.assertEqual(out["text"], ref["text"])
        self.assertEqual(out["stopped"], ref["stopped"])
        # The same conversation as messages.
        msgs = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "what is a cat?"}]
        self.assertEqual(TEXT.generate(messages=msgs, gen_length=32, block_length=8, variable_length=True)["ids"],
                         out["ids"])

    def test_sampler_options_equal_cli(self):
        cases = [
            dict(temperature=1.0, seed=5),
            dict(remasking="margin"),
            dict(remasking="random", seed=3),
            dict(threshold=0.5, cache="dual"),
            dict(factor=1.0, cache="prefix"),
            dict(cfg_scale=1.5),
            dict(variable_length=True, stop=["the", "a"]),
            dict(logits_eos_inf=True, confidence_eos_eot_inf=True),
            dict(end_think_boost=5.0, end_think_power=1.0, end_think_text="cat"),
            dict(allow_mask_prediction=True, temperature=0.5),
        ]
        for options in cases:
            with self.subTest(**options):
                base = dict(gen_length=32, block_length=8, steps=16, **options)
                out = TEXT.generate("the cat sat", **base)
                ref = cli("generate", "--model", text_model(), "--prompt", "the cat sat", *flags(base), "--dtype", "f32",
                          "--format", "json")
                self.assertEqual(out["ids"], ref["ids"])
                self.assertEqual(out["text"], ref["text"])
                self.assertEqual(out["nfe"], ref["nfe"])

    def test_batch_equal_cli(self):
        out = IDS.generate(prompt_ids=[[1, 2], [3, 4, 6]], gen_length=8, block_length=4, steps=4)
        ref = cli("generate", "--model", IDS_MODEL, "--prompt-ids", "1,2", "--prompt-ids", "3,4,6", "--gen-length", 8,
                  "--block-length", 4, "--steps", 4, "--dtype", "f32", "--format", "json")["results"]
        self.assertEqual([r["ids"] for r in out], [r["ids"] for r in ref])
        texts = TEXT.generate(["hello", "the dog"], gen_length=8, block_length=4, steps=4)
        self.assertEqual(len(texts), 2)
        self.assertEqual(texts[1]["ids"], TEXT.generate("the dog", gen_length=8, block_length=4, steps=4)["ids"])

    def test_on_step_sees_every_step_and_can_cancel(self):
        seen = []
        out = IDS.generate(prompt_ids=[1, 2, 3], gen_length=16, block_length=8, steps=8, on_step=seen.append)
        self.assertEqual(len(seen), 8)
        committed = sorted(p for s in seen for p in s["committed"])
        self.assertEqual(committed, list(range(3, 19)))  # every generated position once
        self.assertEqual(seen[-1]["canvas"][3:], out["ids"])
        stopped = IDS.generate(prompt_ids=[1, 2, 3], gen_length=16, block_length=8, steps=8,
                               on_step=lambda s: s["step"] >= 1)
        self.assertTrue(stopped["cancelled"])
        self.assertEqual(stopped["nfe"], 2)

    def test_an_exception_in_on_step_propagates(self):
        def boom(step):
            raise KeyError("from the callback")

        with self.assertRaises(KeyError):
            IDS.generate(prompt_ids=[1, 2, 3], gen_length=16, block_length=8, steps=8, on_step=boom)

    def test_two_threads_on_one_model_equal_sequential(self):
        prompts = [[1, 2, 3], [9, 8, 7, 6], [4, 4], [20, 21, 22]]
        options = dict(gen_length=16, block_length=8, steps=8)
        expected = [IDS.generate(prompt_ids=p, **options)["ids"] for p in prompts]
        got = [None] * len(prompts)

        def work(i):
            got[i] = IDS.generate(prompt_ids=prompts[i], **options)["ids"]

        threads = [threading.Thread(target=work, args=(i,)) for i in range(len(prompts))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(got, expected)


class Stream(unittest.TestCase):
    def test_steps_then_the_result(self):
        options = dict(gen_length=16, block_length=8, steps=8)
        s = IDS.stream(prompt_ids=[[1, 2, 3], [7, 8]], **options)
        steps = list(s)
        self.assertEqual(s.result, IDS.generate(prompt_ids=[[1, 2, 3], [7, 8]], **options))
        for r, prompt_len in enumerate([3, 2]):
            mine = [st for st in steps if st["request"] == r]
            self.assertEqual(len(mine), 8)
            self.assertEqual([st["step"] for st in mine], [0, 1, 2, 3] * 2)
            self.assertEqual(sorted(p for st in mine for p in st["committed"]),
                             list(range(prompt_len, prompt_len + 16)))
            self.assertEqual(mine[-1]["canvas"][prompt_len:], s.result[r]["ids"])
            # Masks disappear step by step.
            masks = [st["canvas"].count(IDS.mask_token_id) for st in mine]
            self.assertEqual(masks, sorted(masks, reverse=True))

    def test_text_stream_equals_cli(self):
        s = TEXT.stream("hello world", gen_length=32, block_length=8, steps=16)
        n = sum(1 for _ in s)
        ref = cli("generate", "--model", text_model(), "--prompt", "hello world", "--gen-length", 32,
                  "--block-length", 8, "--steps", 16, "--dtype", "f32", "--format", "json")
        self.assertEqual(n, 16)
        self.assertEqual(s.result["ids"], ref["ids"])
        self.assertEqual(s.result["text"], ref["text"])

    def test_closing_cancels_the_rest(self):
        with IDS.stream(prompt_ids=[1, 2, 3], gen_length=64, block_length=8, steps=64, max_pending=1) as s:
            first = next(s)
            self.assertEqual(first["step"], 0)
        self.assertTrue(s.result["cancelled"])
        self.assertLess(s.result["nfe"], 64)
        self.assertEqual(list(s), [])

    def test_errors_reach_the_consumer(self):
        s = IDS.stream(prompt_ids=[1, 2, 3], gen_length=10, block_length=4)
        with self.assertRaises(illada.InvalidArgumentError):
            list(s)


class Score(unittest.TestCase):
    def test_ids_equal_cli(self):
        for method, extra in [("confidence", {}), ("likelihood", dict(mc_num=8, mc_batch_size=4, seed=3))]:
            with self.subTest(method=method):
                got = IDS.score(prompt_ids=[1, 2, 3], choice_ids=[[4, 6], [7], [8, 9]], method=method, **extra)
                ref = cli("score", "--model", IDS_MODEL, "--prompt-ids", "1,2,3", "--choice-ids", "4,6;7;8,9",
                          "--method", method, *flags(extra), "--dtype", "f32", "--format", "json", "--quiet")
                self.assertEqual(got, ref["scores"])

    def test_text_equal_cli(self):
        cases = [dict(), dict(normalize=True), dict(method="likelihood", mc_num=8, seed=1), dict(add_bos=True),
                 dict(append_eos=True, cfg_scale=0.5), dict(chat=True, system="be brief")]
        for options in cases:
            with self.subTest(**options):
                got = TEXT.score("the cat sat on", ["mat", "the dog"], **options)
                ref = cli("score", "--model", text_model(), "--prompt", "the cat sat on", "--choices", "mat",
                          "the dog", *flags(options), "--dtype", "f32", "--format", "json", "--quiet")
                self.assertEqual(got, ref["scores"])

    def test_progress_can_stop_likelihood(self):
        calls = []
        with self.assertRaises(illada.CancelledError):
            IDS.score(prompt_ids=[1, 2], choice_ids=[[3]], method="likelihood", mc_num=8, mc_batch_size=2,
                      on_progress=lambda done, total: calls.append((done, total)) or done >= 2)
        self.assertEqual(calls, [(1, 4), (2, 4)])


class Logits(unittest.TestCase):
    def read_cli(self, dtype):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "logits.bin")
            cli("logits", "--model", IDS_MODEL, "--prompt-ids", "1,2,3", "--dtype", dtype, "--out", path)
            with open(path, "rb") as f:
                data = f.read()
        values = struct.unpack(f"<{len(data) // 4}f", data)
        return [list(values[r * 128:(r + 1) * 128]) for r in range(3)]

    def as_lists(self, logits):
        if EXPECT_NUMPY == "1":
            import numpy
            self.assertIsInstance(logits, numpy.ndarray)
            self.assertEqual(logits.dtype, numpy.float32)
            self.assertEqual(logits.shape, (3, 128))
            return logits.tolist()
        self.assertEqual(EXPECT_NUMPY, "0")
        with self.assertRaises(ImportError):
            import numpy  # noqa: F401  (hidden for this run)
        self.assertIsInstance(logits, list)
        self.assertEqual([len(r) for r in logits], [128] * 3)
        return logits

    def test_f32_equal_cli(self):
        self.assertEqual(self.as_lists(IDS.logits([1, 2, 3])), self.read_cli("f32"))

    def test_bf16_equal_cli(self):
        # `illada logits` runs one pass without repacking the weights.
        with illada.Model.load(IDS_MODEL, dtype="bf16", pack_weights=False) as m:
            self.assertEqual(self.as_lists(m.logits([1, 2, 3])), self.read_cli("bf16"))


class TokenizerTest(unittest.TestCase):
    def test_encode_decode_equal_cli(self):
        for text in ["hello world", "The cat 12 sat on mat 84.", "  spaces  ", "é ü <|eot_id|>"]:
            with self.subTest(text=text):
                for special in (True, False):
                    ref = cli("tokenize", "--tokenizer", text_model(), "--prompt", text, "--format", "json",
                              *([] if special else ["--no-special"]))
                    ids = TEXT.tokenizer.encode(text, add_special_tokens=special)
                    self.assertEqual(ids, ref["ids"])
                ids = TEXT.tokenizer.encode(text, False)
                for skip in (True, False):
                    ref = cli("detokenize", "--tokenizer", text_model(), "--ids", ids_arg(ids), "--format", "json",
                              *(["--skip-special"] if skip else []))
                    self.assertEqual(TEXT.tokenizer.decode(ids, skip_special_tokens=skip), ref["text"])

    def test_chat_template_equal_cli(self):
        msgs = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
        text = TEXT.tokenizer.apply_chat_template(msgs)
        self.assertTrue(text.startswith("<|startoftext|><|start_header_id|>system"))
        ref = cli("tokenize", "--tokenizer", text_model(), "--prompt", "hi", "--chat", "--system", "be brief",
                  "--format", "json")
        self.assertEqual(TEXT.tokenizer.encode(text, add_special_tokens=False), ref["ids"])
        self.assertEqual(TEXT.encode_prompt("hi", chat=True, system="be brief"), ref["ids"])

    def test_token_to_id(self):
        self.assertEqual(TEXT.tokenizer.token_to_id("<|eot_id|>"), 10)
        self.assertIsNone(TEXT.tokenizer.token_to_id("<|no such token|>"))

    def test_without_tokenizer(self):
        self.assertFalse(IDS.tokenizer.available)
        with self.assertRaises(illada.NoTokenizerError) as e:
            IDS.tokenizer.encode("hello")
        self.assertIn("tokenizer.json", str(e.exception))
        with self.assertRaises(illada.NoTokenizerError):
            IDS.generate("hello")


class Errors(unittest.TestCase):
    def test_missing_model(self):
        with self.assertRaises(illada.LoadError) as e:
            illada.Model.load("/no/such/model")
        self.assertIsInstance(e.exception, OSError)
        self.assertIn("/no/such/model", str(e.exception))
        self.assertEqual(e.exception.status, "ILLADA_ERROR_LOAD")

    def test_bad_options_name_the_option(self):
        cases = [
            (dict(gen_length=10, block_length=4), "block_length"),
            (dict(gen_length=512, block_length=32, steps=16), "max_sequence_length"),
            (dict(temperature=-1), "temperature"),
            (dict(threshold=1.5), "threshold"),
            (dict(remasking="best"), "remasking"),
            (dict(cache="all"), "cache"),
            (dict(gen_length="long"), "gen_length"),
            (dict(cfg_scale=1.0, cache="dual", gen_length=8, block_length=8), "cache"),
        ]
        for options, word in cases:
            with self.subTest(**options):
                with self.assertRaises(illada.InvalidArgumentError) as e:
                    IDS.generate(prompt_ids=[1, 2, 3], **options)
                self.assertIsInstance(e.exception, ValueError)
                self.assertIn(word, str(e.exception))

    def test_bad_inputs(self):
        with self.assertRaises(illada.InvalidArgumentError) as e:
            IDS.generate(prompt_ids=[1, 500], gen_length=8, block_length=8)
        self.assertIn("500", str(e.exception))
        with self.assertRaises(illada.InvalidArgumentError):
            IDS.generate(prompt_ids=[1], prompt="x")
        with self.assertRaises(illada.InvalidArgumentError):
            IDS.generate()
        with self.assertRaises(TypeError):
            IDS.generate(prompt_ids=[1], no_such_option=1)
        with self.assertRaises(illada.InvalidArgumentError):
            IDS.logits([1, 999])
        with self.assertRaises(illada.InvalidArgumentError) as e:
            IDS.score(prompt_ids=[1], choice_ids=[[2]], method="likelihood", mc_num=8, mc_batch_size=3)
        self.assertIn("mc_batch_size", str(e.exception))
        with self.assertRaises(illada.InvalidArgumentError) as e:
            illada.Model.load(IDS_MODEL, dtype="fp8")
        self.assertIn("dtype", str(e.exception))

    def test_closed_model(self):
        m = illada.Model.load(IDS_MODEL, dtype="f32")
        m.close()
        with self.assertRaises(illada.IlladaError):
            m.logits([1])
        with self.assertRaises(illada.IlladaError):
            m.generate(prompt_ids=[1])

    def test_closing_a_model_cancels_its_streams_and_waits_for_calls(self):
        m = illada.Model.load(IDS_MODEL, dtype="f32")
        s = m.stream(prompt_ids=[1, 2, 3], gen_length=64, block_length=8, steps=64, max_pending=1)
        next(s)
        started, results = threading.Event(), []

        def slow_step(step):
            started.set()
            time.sleep(0.01)

        t = threading.Thread(target=lambda: results.append(
            m.generate(prompt_ids=[4, 5], gen_length=16, block_length=8, steps=16, on_step=slow_step)))
        t.start()
        started.wait()
        m.close()  # the weights stay until the generation in the other thread is done
        t.join()
        self.assertTrue(s.result["cancelled"])
        self.assertEqual(len(results[0]["ids"]), 16)
        self.assertFalse(results[0]["cancelled"])

    def test_closing_a_model_from_its_own_callback_is_refused(self):
        m = illada.Model.load(IDS_MODEL, dtype="f32")
        with self.assertRaises(illada.IlladaError) as e:
            m.generate(prompt_ids=[1, 2], gen_length=8, block_length=8, on_step=lambda step: m.close())
        self.assertIn("close()", str(e.exception))
        m.close()


if __name__ == "__main__":
    unittest.main()
