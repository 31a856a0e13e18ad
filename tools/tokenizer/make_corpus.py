#!/usr/bin/env python3
"""Writes the tokenizer test corpora (deterministic, fixed seed):

  python3 tools/tokenizer/make_corpus.py > tests/fixtures/tokenizer/corpus.json
  python3 tools/tokenizer/make_corpus.py --hf-extra > tests/fixtures/tokenizer/corpus_hf_extra.json

corpus.json: texts on which illada must agree token for token with both JavaScript-callable
references (@lenml/tokenizers and Hugging Face's own `tokenizers`). corpus_hf_extra.json:
texts on which those two references disagree with each other, checked against Hugging Face
only: U+FEFF (whitespace in JavaScript's regex only), U+0085 (whitespace in Rust/Oniguruma
only), U+180E, "'ſ" (transformers.js rewrites (?i:'s) to ASCII [sS]). Characters assigned
after Unicode 14 (the tables of Debian 12's PCRE2 10.42) are kept out of both.
"""
import json
import random
import sys

FIXED = [
    "",
    "Hello world",
    "Hello, my dog is cute",
    " leading space",
    "trailing space ",
    "  two leading spaces",
    "multiple     spaces   between words",
    "tabs\tand\t\ttabs",
    "line one\nline two\n\nline four\n\n\n\nafter four newlines",
    "windows\r\nline\r\nendings\r\n",
    "mixed \n \n\t \r\n  whitespace   \n",
    "\n\n\n",
    "     ",
    "\t",
    "trailing newline\n",
    "I'm sure you're right, he's here, we've done it, they'll go, I'd say, don't.",
    "I'M SURE YOU'RE RIGHT, HE'S HERE, WE'VE DONE IT, THEY'LL GO, I'D SAY, DON'T.",
    "mIxEd cAsE: It'S, yOu'Re, We'Ve, ThEy'Ll, i'D, cAn'T",
    "rock 'n' roll, 'quoted', ''double'', 's alone, 'S alone, '123",
    "o'clock ma'am y'all ain't 'twas",
    "The year 2024 had 366 days; π ≈ 3.14159265358979323846.",
    "1234567890",
    "12345678901234567890123456789012345678901234567890",
    "1,000,000 and 1.000.000 and 1 000 000",
    "+1 (555) 123-4567, 2024-05-17T12:34:56Z, v1.2.3-rc.4",
    "0x7FFFFFFF 0b1010 1e-9 6.022e23 -42 +17",
    "२०२४ ١٢٣٤ ௧௨௩ ①②③ ½ ¾ Ⅻ ⁴²",
    "中文分词测试：我爱北京天安门。今天天气很好！",
    "日本語のテキスト、ひらがなとカタカナと漢字。東京タワー",
    "한국어 텍스트입니다. 안녕하세요, 세계!",
    "Русский текст: Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "Ελληνικά: Ξεσκεπάζω την ψυχοφθόρα βδελυγμία.",
    "العربية: نص تجريبي باللغة العربية، مع علامات الترقيم؟",
    "עברית: טקסט לבדיקה בעברית.",
    "हिन्दी: यह एक परीक्षण वाक्य है। क्षत्रिय ज्ञान",
    "বাংলা লেখা পরীক্ষা করা হচ্ছে।",
    "தமிழ் உரை சோதனை",
    "ภาษาไทยไม่มีช่องว่างระหว่างคำสวัสดีครับ",
    "ქართული ენა, Հայերեն լեզու",
    "Tiếng Việt có dấu: Xin chào, thế giới! Người Việt",
    "Türkçe: İstanbul, ılık, IĞDIR; Deutsch: Straße, Größe, ÄÖÜ",
    "Français: où est l'hôtel? Ça va très bien, merci.",
    "Español: ¿Dónde está la biblioteca? ¡Olé!",
    "e\u0301 vs \u00e9, A\u030a vs \u00c5, n\u0303",
    "Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǫ̗ text",
    "😀😃😄 emoji 🎉🎊",
    "👨‍👩‍👧‍👦 family, 👩🏽‍💻 technologist, 🏳️‍🌈 flag",
    "👍🏻👍🏼👍🏽👍🏾👍🏿 skin tones",
    "🇯🇵🇺🇸🇫🇷 flags, 1️⃣ keycap, ❤️ heart, ☺︎ text style",
    "𝕳𝖊𝖑𝖑𝖔 𝓌𝑜𝓇𝓁𝒹 𐌰𐌱𐌲 𠀀𠀁 math and historic scripts",
    "zero\u200bwidth\u200cjoiners\u200d and soft\u00adhyphen",
    "nbsp\u00a0here, ideographic\u3000space, em\u2003space, thin\u2009space",
    "line\u2028separator and paragraph\u2029separator",
    "controls \x00 \x01 \x07 \x1b[31mred\x1b[0m \x7f",
    "!!!??? ... — – « » “quotes” ‘single’ ¿¡ ©®™ § ¶ † ‡",
    "$100 €50 £30 ¥1000 ₹500 ₿0.5",
    "<|begin_of_text|>Hello<|eot_id|>",
    "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
    "text<|eot_id|>more text <|end_of_text|> end",
    "<|eot_id|><|eot_id|><|eot_id|>",
    "partial <|eot_id without close and <|eot_id| and |eot_id|>",
    "<|reserved_special_token_5|> reserved <|reserved_special_token_250|>",
    "<|begin_of_text|>",
    "def fibonacci(n: int) -> int:\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n",
    "#include <vector>\nint main() {\n  std::vector<int> v{1, 2, 3};\n  for (auto& x : v) x *= 2;\n  return 0;\n}\n",
    "{\"name\": \"illada\", \"version\": [0, 1], \"ok\": true, \"nested\": {\"a\": null}}",
    "<html><body><div class=\"main\">Hello &amp; welcome</div></body></html>",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name DESC LIMIT 10;",
    "const re = /^[a-z0-9._%+-]+@[a-z0-9.-]+\\.[a-z]{2,}$/i;",
    "https://example.com/path/to/page?query=1&lang=en#section-2",
    "mail me: first.last+tag@sub.example.co.uk",
    "/usr/local/bin/python3 -m pip install --upgrade 'numpy>=1.26'",
    "C:\\Users\\Name\\Documents\\file.txt",
    "| col1 | col2 |\n|------|------|\n| a    | b    |\n",
    "# Title\n\n- item one\n- item two\n\n```bash\necho $HOME\n```\n",
    "    indented code\n        more indented\n\ttab indented",
    "x = [i**2 for i in range(10) if i % 2 == 0]  # squares",
    "λx.λy.x ∀x∈ℝ: x² ≥ 0 ∑ ∫ √ ∞ ≠ ≤",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "================================================================",
    "abc中文123def한국어456ghi",
    "camelCaseIdentifier snake_case_identifier SCREAMING_CASE kebab-case",
    "Pneumonoultramicroscopicsilicovolcanoconiosis antidisestablishmentarianism",
    "The quick brown fox jumps over the lazy dog. " * 8,
]

FRAGMENTS = [
    "hello", "World", " the", "  ", "\n", "\t", "\r\n", "'s", "'T", "'re", "'ll", "'VE", "'d", "'m",
    "123", "4567", "89", "3.5", "中文", "日本", "한국", "Привет", "γειά", "مرحبا", "नमस्ते", "สวัสดี",
    "😀", "👍🏽", "👨‍👩‍👧", "🇫🇷", "!", "?", "...", ",", ".", "—", "(", ")", "{", "}", "<", ">", "/",
    "\\", "\"", "'", "`", "#", "$", "%", "&", "*", "_", "-", "+", "=", "|", "~", "^", "@",
    "<|eot_id|>", "<|begin_of_text|>", "<|start_header_id|>", " <|end_header_id|>", "\u00a0",
    "\u3000", "e\u0301", "ß", "İ", "ﬁ", "Ⅻ", "①", "x", "Y", "z", "ABC", "def", "Ghi",
]


def random_cases(n, seed=1234):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        k = rng.randint(1, 20)
        out.append("".join(rng.choice(FRAGMENTS) for _ in range(k)))
    return out


HF_EXTRA = [
    "bom\ufeffinside and \ufeff leading",
    "\ufeffstarts with a byte order mark",
    "next\u0085line and  \u0085 spaced",
    "mongolian\u180evowel separator \u180e",
    "'\u017ft long s contraction, I'\u017f, '\u017f",
    "'S 'K '\u212a kelvin",
    "tabs\ufeff\t\u0085\n mixed",
]


def main():
    if "--hf-extra" in sys.argv:
        json.dump(HF_EXTRA, sys.stdout, ensure_ascii=False, indent=0)
        sys.stdout.write("\n")
        return
    cases = FIXED + random_cases(300)
    json.dump(cases, sys.stdout, ensure_ascii=False, indent=0)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
