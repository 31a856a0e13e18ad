"""The official LLaDA weight initialisation, ported line by line, and the per-tensor rules it
implies (fixtures for tests/model/init_test.cc).

    /usr/bin/python3 tools/reference/init_ref.py          # writes tests/fixtures/model/init_rules.json
    /usr/bin/python3 tools/reference/init_ref.py --check  # rebuilds in memory and compares

Ported from modeling_llada.py (GSAI-ML/LLaDA-8B-Instruct's remote code, the same in iLLaDA's
release): `init_weights(config, module, d, layer_id, std_factor, type_of_module)`,
`LLaDABlock.reset_parameters` (attn_out and ff_out: d = in_features, layer_id, out_module),
`LLaDALlamaBlock.reset_parameters` (norms ones; q/k/v_proj, ff_proj, up_proj: d = d_model, no
layer id, NO module type), `LLaDAModel.reset_parameters` (wte: emb, std_factor
0.5 sqrt(d_model) only with scale_logits; ln_f ones; untied ff_out: final_out), and the
`_is_residual` flag on the blocks' ff_out (normal init divides it by sqrt(2 n_layers)). Defaults
from configuration_llada.py: init_fn normal, init_std 0.02, init_cutoff_factor None.

`ref_init(cfg, seed)` draws real tensors with torch.nn.init (what `LLaDAModelLM(config,
init_params=True)` would hold, keyed by the Hugging Face names); `rules(cfg)` runs the same code
with torch.nn.init's functions replaced by recorders and returns {name: (std, cutoff)}.
"""

import json
import math
import os
import sys

import torch

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llada_ref as R  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


class _Module:
    """Stands for nn.Linear / nn.Embedding: a weight and, for Linear, the _is_residual mark."""

    def __init__(self, name, rows, cols, linear=True, residual=False):
        self.name, self.weight, self.linear, self._is_residual = name, torch.empty(rows, cols), linear, residual
        self.bias = None
        self.in_features = cols


def init_weights(config, module, d=None, layer_id=None, std_factor=1.0, type_of_module=None, nn_init=None):
    """modeling_llada.py init_weights, line by line (`nn_init` is torch.nn.init or a recorder)."""
    init = nn_init or torch.nn.init
    d = d if d is not None else config["d_model"]
    fn = config.get("init_fn", "normal")
    init_std = config.get("init_std", 0.02)
    cutoff_factor_cfg = config.get("init_cutoff_factor")
    if fn == "normal":
        std = init_std * std_factor
        if cutoff_factor_cfg is not None:
            cutoff_value = cutoff_factor_cfg * std
            init.trunc_normal_(module.weight, mean=0.0, std=std, a=-cutoff_value, b=cutoff_value)
        else:
            init.normal_(module.weight, mean=0.0, std=std)
    elif fn == "mitchell":
        std = std_factor / math.sqrt(d)
        if layer_id is not None:
            std = std / math.sqrt(2 * (layer_id + 1))
        init.trunc_normal_(module.weight, mean=0.0, std=std, a=-3 * std, b=3 * std)
    elif fn == "kaiming_normal":
        init.kaiming_normal_(module.weight, nonlinearity="relu")
    elif fn == "fan_in":
        std = std_factor / math.sqrt(d)
        init.normal_(module.weight, mean=0.0, std=std)
    elif fn == "full_megatron":
        if type_of_module is None:
            raise RuntimeError("When using the full_megatron init, every module must have a type.")
        cutoff_factor = cutoff_factor_cfg if cutoff_factor_cfg is not None else 3
        if type_of_module == "in":
            std = init_std
        elif type_of_module == "out":
            std = init_std / math.sqrt(2.0 * config["n_layers"])
        elif type_of_module == "emb":
            std = init_std
        elif type_of_module == "final_out":
            std = config["d_model"] ** -0.5
        else:
            raise RuntimeError(f"Unknown module type '{type_of_module}'")
        init.trunc_normal_(module.weight, mean=0.0, std=std, a=-cutoff_factor * std, b=cutoff_factor * std)
    else:
        raise NotImplementedError(fn)
    if module.linear:
        if fn == "normal" and getattr(module, "_is_residual", False):
            with torch.no_grad():
                module.weight.div_(math.sqrt(2 * config["n_layers"]))
                if nn_init is not None and hasattr(nn_init, "divided"):
                    nn_init.divided(module, math.sqrt(2 * config["n_layers"]))


def reset_parameters(config, nn_init=None, megatron_in_types=False):
    """LLaDAModel.reset_parameters for llama blocks. Returns {name: weight}. With
    megatron_in_types, q/k/v_proj, ff_proj, up_proj get type "in" (the released llama block
    passes none, which full_megatron rejects); illada does that."""
    D = R.dims(config)
    d, mlp, V, L = D["d"], D["mlp"], D["vocab"], D["n_layers"]
    qd, kvd = D["n_heads"] * D["hd"], D["n_kv"] * D["hd"]
    W = {}
    pre = "model.transformer."
    scale_logits = config.get("scale_logits", False)
    wte = _Module(pre + "wte.weight", V, d, linear=False)
    init_weights(config, wte, std_factor=(0.5 * math.sqrt(d)) if scale_logits else 1.0, type_of_module="emb",
                 nn_init=nn_init)
    W[wte.name] = wte.weight
    W[pre + "ln_f.weight"] = torch.ones(d)
    if not D["tied"]:
        head = _Module(pre + "ff_out.weight", V, d)
        init_weights(config, head, type_of_module="final_out", nn_init=nn_init)
        W[head.name] = head.weight
    in_type = "in" if megatron_in_types else None
    for i in range(L):
        b = f"{pre}blocks.{i}."
        # LLaDABlock.reset_parameters
        attn_out = _Module(b + "attn_out.weight", d, qd)
        init_weights(config, attn_out, d=d, layer_id=i, type_of_module="out", nn_init=nn_init)
        ff_out = _Module(b + "ff_out.weight", d, mlp, residual=True)
        init_weights(config, ff_out, d=ff_out.in_features, layer_id=i, type_of_module="out", nn_init=nn_init)
        # LLaDALlamaBlock.reset_parameters
        W[b + "attn_norm.weight"] = torch.ones(d)
        W[b + "ff_norm.weight"] = torch.ones(d)
        for name, rows in (("q_proj", qd), ("k_proj", kvd), ("v_proj", kvd), ("ff_proj", mlp), ("up_proj", mlp)):
            m = _Module(b + name + ".weight", rows, d)
            init_weights(config, m, d=d, layer_id=None, type_of_module=in_type, nn_init=nn_init)
            W[m.name] = m.weight
        W[attn_out.name] = attn_out.weight
        W[ff_out.name] = ff_out.weight
    return W


def ref_init(config, seed, megatron_in_types=False):
    """Real tensors, drawn with torch.nn.init under torch.manual_seed(seed)."""
    torch.manual_seed(seed)
    return reset_parameters(config, megatron_in_types=megatron_in_types)


class _Recorder:
    """torch.nn.init stand-in that records the distribution asked for each weight."""

    def __init__(self):
        self.rules = {}
        self._names = {}

    def _key(self, t):
        return id(t)

    def normal_(self, t, mean=0.0, std=1.0):
        self.rules[id(t)] = [std, 0.0]

    def trunc_normal_(self, t, mean=0.0, std=1.0, a=-2.0, b=2.0):
        assert abs(a + b) < 1e-12, "symmetric cut expected"
        self.rules[id(t)] = [std, b / std]

    def kaiming_normal_(self, t, a=0, mode="fan_in", nonlinearity="leaky_relu"):
        assert mode == "fan_in" and nonlinearity == "relu"
        fan_in = t.shape[1]
        self.rules[id(t)] = [math.sqrt(2.0) / math.sqrt(fan_in), 0.0]

    def divided(self, module, by):
        r = self.rules[id(module.weight)]
        r[0] /= by  # the cut, in standard deviations, is unchanged by the division


def rules(config, megatron_in_types=False):
    rec = _Recorder()
    W = reset_parameters(config, nn_init=rec, megatron_in_types=megatron_in_types)
    out = {}
    for name, t in W.items():
        if id(t) in rec.rules:
            std, cut = rec.rules[id(t)]
            out[name] = {"std": std, "cutoff": cut}
        else:
            out[name] = {"ones": True}
    return out


def _configs():
    base = json.load(open(os.path.join(REPO, "tests", "fixtures", "tiny_gqa", "config.json")))
    mha = json.load(open(os.path.join(REPO, "tests", "fixtures", "tiny_mha", "config.json")))
    cases = []
    for name, cfg in (("tiny_gqa_tied", base), ("tiny_mha", mha)):
        for fn, extra in (("normal", {}), ("normal", {"init_cutoff_factor": 2.0}), ("normal", {"init_std": 0.05}),
                          ("mitchell", {}), ("kaiming_normal", {}), ("fan_in", {}), ("full_megatron", {}),
                          ("full_megatron", {"init_cutoff_factor": 2.5, "init_std": 0.01}), (None, {})):
            c = dict(cfg)
            c.pop("init_fn", None)
            if fn is not None:
                c["init_fn"] = fn
            c.update(extra)
            label = f"{name}_{fn or 'default'}" + "".join(f"_{k}{v}" for k, v in extra.items())
            cases.append((label, c))
    return cases


def build():
    out = []
    for label, c in _configs():
        official_raises = False
        try:
            r = rules(c)
        except RuntimeError:
            official_raises = True
            r = rules(c, megatron_in_types=True)
        out.append({"name": label, "config": c, "official_raises": official_raises, "rules": r})
    return json.dumps(out, indent=1, sort_keys=True) + "\n"


def _self_check():
    """Drawn tensors have the recorded rule's spread (a loose check of the port itself)."""
    cfg = dict(json.load(open(os.path.join(REPO, "tests", "fixtures", "tiny_mha", "config.json"))), init_fn="mitchell")
    W, rr = ref_init(cfg, 0), rules(cfg)
    for name, t in W.items():
        r = rr[name]
        if r.get("ones"):
            assert torch.all(t == 1), name
            continue
        if r["cutoff"]:
            assert t.abs().max() <= r["cutoff"] * r["std"] + 1e-7, name


if __name__ == "__main__":
    _self_check()
    text = build()
    path = os.path.join(REPO, "tests", "fixtures", "model", "init_rules.json")
    if "--check" in sys.argv:
        same = open(path).read() == text
        print("init_rules.json identical" if same else "init_rules.json DIFFERS")
        sys.exit(0 if same else 1)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    print(f"wrote {path} ({len(text)} bytes)")
