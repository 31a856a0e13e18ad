# Sourced by tests/cli/*.sh (not a test itself): a small random-word corpus, a tiny untied
# GQA model config, a BPE tokenizer of 300 tokens and the token shards, in the current
# directory: corpus.txt, model.json, tok/, data/.
# Usage: tiny_corpus ILLADA_BIN SEED N_PARAGRAPHS
tiny_corpus() {
  local bin="$1" seed="$2" n="$3"
  python3 - "$seed" "$n" <<'PY'
import json, random, sys
random.seed(int(sys.argv[1]))
words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()
paras = [" ".join(random.choice(words) for _ in range(random.randint(5, 40))) for _ in range(int(sys.argv[2]))]
open("corpus.txt", "w").write("\n\n".join(paras) + "\n")
json.dump({"d_model": 64, "n_layers": 2, "n_heads": 4, "n_kv_heads": 2, "mlp_hidden_size": 128,
           "max_sequence_length": 128, "weight_tying": False}, open("model.json", "w"))
PY
  "$bin" tokenizer train --input corpus.txt --vocab-size 300 --out tok --quiet > /dev/null
  "$bin" data prepare --tokenizer tok --input corpus.txt --out data > /dev/null
}
