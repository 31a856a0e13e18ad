"""Every example of docs/python.md runs, as written, against the installed package (on the tiny
text model in place of the documented model path)."""

import os
import re
import subprocess
import sys
import unittest

import support

DOC = os.path.join(support.SOURCE, "docs", "python.md")


def examples():
    with open(DOC) as f:
        text = f.read()
    return re.findall(r"<!-- example -->\n```python\n(.*?)```", text, re.S)


class DocExamples(unittest.TestCase):
    def test_there_are_examples(self):
        self.assertGreaterEqual(len(examples()), 5)

    def test_examples_run(self):
        for i, code in enumerate(examples()):
            with self.subTest(example=i):
                self.assertIn("/models/LLaDA-8B-Instruct", code)
                code = code.replace("/models/LLaDA-8B-Instruct", support.text_model())
                out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
                self.assertEqual(out.returncode, 0, f"example {i} failed:\n{out.stderr}")


if __name__ == "__main__":
    unittest.main()
