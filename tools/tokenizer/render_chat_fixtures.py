#!/usr/bin/env python3
"""Renders chat conversations with Jinja2 (what transformers' apply_chat_template runs) to make
tests/fixtures/tokenizer/chat_expected.json, the reference for illada's native templates.

Usage: python3 tools/tokenizer/render_chat_fixtures.py > tests/fixtures/tokenizer/chat_expected.json
Needs python3-jinja2. The LLaDA template is read from tests/fixtures/tokenizer/llada/tokenizer_config.json
(copied from GSAI-ML/LLaDA-8B-Instruct).
"""
import json
import os
import sys

import jinja2

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim "
    "+ '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif "
    "%}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")

CONVERSATIONS = [
    [{"role": "user", "content": "What is 2+2?"}],
    [{"role": "system", "content": "You are a helpful assistant."},
     {"role": "user", "content": "  Hello!\n\n"},
     {"role": "assistant", "content": "\tHi there. How can I help?  "},
     {"role": "user", "content": "Tell me a joke about <|eot_id|> tokens."}],
    [{"role": "user", "content": "\u3000\u00a0full-width and nbsp spaces\u2003\n"}],
    [{"role": "user", "content": "中文问题：今天天气怎么样？"}, {"role": "assistant", "content": "很好。"}],
    [{"role": "user", "content": ""}],
    [],
]


def main():
    cfg = json.load(open(os.path.join(ROOT, "tests/fixtures/tokenizer/llada/tokenizer_config.json")))
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)  # transformers' settings
    out = []
    for name, src, bos in [("llada", cfg["chat_template"], cfg["bos_token"]),
                           ("llama3", LLAMA3_TEMPLATE, "<|begin_of_text|>")]:
        tmpl = env.from_string(src)
        for messages in CONVERSATIONS:
            for gen in (True, False):
                out.append({"template": name, "bos_token": bos, "add_generation_prompt": gen,
                            "messages": messages,
                            "rendered": tmpl.render(messages=messages, bos_token=bos, add_generation_prompt=gen)})
    json.dump({"jinja2": jinja2.__version__, "cases": out}, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
