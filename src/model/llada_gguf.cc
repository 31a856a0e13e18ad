// LLaDA <-> GGUF: names, the RoPE row permutation, hyper-parameter keys and the checks that a
// file's metadata and tensors describe one consistent LLaDA model.
#include "model/llada_gguf.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "io/safetensors.h"
#include "model/weights.h"
#include "util/check.h"
#include "util/memory.h"

namespace illada {
namespace {

constexpr std::string_view kArch = "llada";

struct SlotName {
  std::string_view hf, gguf;
};
constexpr SlotName kBlockSlots[] = {
    {"attn_norm", "attn_norm"}, {"q_proj", "attn_q"},   {"k_proj", "attn_k"},
    {"v_proj", "attn_v"},       {"attn_out", "attn_output"}, {"ff_norm", "ffn_norm"},
    {"ff_proj", "ffn_gate"},    {"up_proj", "ffn_up"},  {"ff_out", "ffn_down"},
};
constexpr SlotName kGlobals[] = {
    {"model.transformer.wte.weight", "token_embd.weight"},
    {"model.transformer.ln_f.weight", "output_norm.weight"},
    {"model.transformer.ff_out.weight", "output.weight"},
};

// "<prefix><digits>.<slot>.weight" -> (layer, slot); false if `name` does not have that form.
bool split_block_name(std::string_view name, std::string_view prefix, int64_t* layer,
                      std::string_view* slot) {
  if (name.substr(0, prefix.size()) != prefix) return false;
  name.remove_prefix(prefix.size());
  size_t digits = 0;
  int64_t v = 0;
  while (digits < name.size() && digits < 9 && name[digits] >= '0' && name[digits] <= '9') {
    v = v * 10 + (name[digits] - '0');
    ++digits;
  }
  if (digits == 0 || (digits > 1 && name[0] == '0') || digits >= name.size() || name[digits] != '.') {
    return false;
  }
  name.remove_prefix(digits + 1);
  constexpr std::string_view kSuffix = ".weight";
  if (name.size() <= kSuffix.size() || name.substr(name.size() - kSuffix.size()) != kSuffix) return false;
  *layer = v;
  *slot = name.substr(0, name.size() - kSuffix.size());
  return true;
}

// An integer key (any integer type; an array of equal values, as llama.cpp allows per-layer
// values); nullopt if absent. Throws Error if present with another type or out of range.
std::optional<int64_t> int_key(const GgufFile& f, const std::string& key, int64_t lo, int64_t hi) {
  const GgufValue* v = f.find(key);
  if (!v) return std::nullopt;
  std::optional<int64_t> x = v->as_int();
  if (v->type == GgufType::BOOL) x.reset();
  if (x && v->array) {
    for (uint64_t i = 1; i < v->count(); ++i) {
      if (v->as_int(i) != x) {
        fail(f.path(), ": key '", key, "' differs between layers (", v->describe(),
             "); illada runs models whose layers all have the same shape");
      }
    }
  }
  if (!x) fail(f.path(), ": key '", key, "' must be an integer, got ", v->describe());
  if (*x < lo || *x > hi) fail(f.path(), ": key '", key, "' = ", *x, " is outside [", lo, ", ", hi, "]");
  return x;
}

int64_t required_int(const GgufFile& f, const std::string& key, int64_t lo, int64_t hi) {
  const auto v = int_key(f, key, lo, hi);
  if (!v) fail(f.path(), ": missing key '", key, "' (a LLaDA GGUF file must set it)");
  return *v;
}

// A number key. An f32 value comes back as the shortest decimal that rounds to it (1e-05, not
// 9.99999974738e-06): what the writer meant, and exactly what a config.json would say.
std::optional<double> number_key(const GgufFile& f, const std::string& key) {
  const GgufValue* v = f.find(key);
  if (!v) return std::nullopt;
  const auto x = v->array ? std::nullopt : v->as_number();
  if (!x) fail(f.path(), ": key '", key, "' must be a number, got ", v->describe());
  if (v->type == GgufType::F32 && std::isfinite(*x)) {
    char buf[64];
    const auto r = std::to_chars(buf, buf + sizeof(buf), static_cast<float>(*x));
    return std::strtod(std::string(buf, r.ptr).c_str(), nullptr);
  }
  return x;
}

std::optional<bool> bool_key(const GgufFile& f, const std::string& key) {
  const GgufValue* v = f.find(key);
  if (!v) return std::nullopt;
  if (v->array || v->type != GgufType::BOOL) fail(f.path(), ": key '", key, "' must be a bool, got ", v->describe());
  return *v->as_int() != 0;
}

std::string ne_str(const std::vector<int64_t>& ne) {
  std::string s = "[";
  for (size_t i = 0; i < ne.size(); ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
  return s + "]";
}

// The ggml shape of a checkpoint shape ([rows, cols] -> {cols, rows}), padded to 4 dims so
// that files writing trailing 1s compare equal.
std::vector<int64_t> padded_ne(std::vector<int64_t> ne) {
  ne.resize(4, 1);
  return ne;
}

}  // namespace

std::string llada_gguf_name(std::string_view hf) {
  for (const SlotName& g : kGlobals) {
    if (hf == g.hf) return std::string(g.gguf);
  }
  int64_t layer = 0;
  std::string_view slot;
  if (!split_block_name(hf, "model.transformer.blocks.", &layer, &slot)) return "";
  for (const SlotName& s : kBlockSlots) {
    if (slot == s.hf) return str_cat("blk.", layer, ".", s.gguf, ".weight");
  }
  return "";
}

std::string llada_hf_name(std::string_view gguf) {
  for (const SlotName& g : kGlobals) {
    if (gguf == g.gguf) return std::string(g.hf);
  }
  int64_t layer = 0;
  std::string_view slot;
  if (!split_block_name(gguf, "blk.", &layer, &slot)) return "";
  for (const SlotName& s : kBlockSlots) {
    if (slot == s.gguf) return str_cat("model.transformer.blocks.", layer, ".", s.hf, ".weight");
  }
  return "";
}

bool llada_rope_permuted(std::string_view hf) {
  constexpr std::string_view q = ".q_proj.weight", k = ".k_proj.weight";
  auto ends = [&](std::string_view s) { return hf.size() > s.size() && hf.substr(hf.size() - s.size()) == s; };
  return hf.substr(0, 25) == "model.transformer.blocks." && (ends(q) || ends(k));
}

void permute_rope_rows(std::span<const std::byte> in, std::span<std::byte> out, int64_t n_heads,
                       int64_t rows, uint64_t row_bytes, bool to_gguf) {
  ILLADA_CHECK(n_heads > 0 && rows % (2 * n_heads) == 0, "permute_rope_rows: ", rows,
               " rows do not split into ", n_heads, " heads of pairs");
  ILLADA_CHECK(in.size() == static_cast<uint64_t>(rows) * row_bytes && out.size() == in.size(),
               "permute_rope_rows: buffer sizes");
  const int64_t hd = rows / n_heads, half = hd / 2;
  for (int64_t h = 0; h < n_heads; ++h) {
    for (int64_t s = 0; s < 2; ++s) {
      for (int64_t i = 0; i < half; ++i) {
        const int64_t ckpt = h * hd + s * half + i, gguf = h * hd + 2 * i + s;
        const int64_t from = to_gguf ? ckpt : gguf, to = to_gguf ? gguf : ckpt;
        std::memcpy(out.data() + to * row_bytes, in.data() + from * row_bytes, row_bytes);
      }
    }
  }
}

void set_llada_hparams(GgufWriter& w, const ModelConfig& c) {
  const std::string a(kArch);
  auto u32 = [](int64_t v) { return GgufValue::u32(static_cast<uint32_t>(v)); };
  if (!w.find("general.architecture")) w.set("general.architecture", GgufValue::str(a));
  w.set(a + ".vocab_size", u32(c.embedding_size));
  w.set(a + ".context_length", u32(c.max_sequence_length));
  w.set(a + ".embedding_length", u32(c.d_model));
  w.set(a + ".block_count", u32(c.n_layers));
  w.set(a + ".feed_forward_length", u32(c.mlp_hidden_size));
  w.set(a + ".attention.head_count", u32(c.n_heads));
  w.set(a + ".attention.head_count_kv", u32(c.n_kv_heads));
  w.set(a + ".rope.freq_base", GgufValue::f32(static_cast<float>(c.rope_theta)));
  w.set(a + ".attention.layer_norm_rms_epsilon", GgufValue::f32(static_cast<float>(c.rms_norm_eps)));
  w.set(a + ".rope.dimension_count", u32(c.head_dim()));
  w.set(a + ".attention.causal", GgufValue::boolean(false));
  w.set("diffusion.shift_logits", GgufValue::boolean(false));
  if (c.vocab_size != c.embedding_size) w.set("illada.vocab_size", u32(c.vocab_size));
  // The model's special ids (config.json), where llama.cpp's converter puts them too.
  auto id = [&](const char* key, int32_t v) {
    if (v >= 0) w.set(str_cat("tokenizer.ggml.", key), u32(v));
  };
  id("bos_token_id", c.bos_token_id);
  id("eos_token_id", c.eos_token_id);
  id("padding_token_id", c.pad_token_id);
  id("mask_token_id", c.mask_token_id);
}

ModelConfig llada_config_from_gguf(const GgufFile& f) {
  const std::string& src = f.path();
  const GgufValue* arch = f.find("general.architecture");
  if (!arch || !arch->as_string() || arch->array) {
    fail(src, ": missing key 'general.architecture' (expected the string \"llada\")");
  }
  if (*arch->as_string() != kArch) {
    fail(src, ": general.architecture is \"", *arch->as_string(),
         "\"; illada runs LLaDA models (\"llada\")");
  }
  if (const auto n = int_key(f, "split.count", 0, 1 << 16); n && *n > 1) {
    fail(src, ": one of ", *n, " split files (gguf-split); merge them first "
         "(llama-gguf-split --merge FIRST.gguf OUT.gguf)");
  }
  const std::string a(kArch);
  constexpr int64_t kMaxDim = int64_t{1} << 24, kMaxCount = int64_t{1} << 20;
  ModelConfig c;
  c.n_layers = required_int(f, a + ".block_count", 1, kMaxCount);
  c.d_model = required_int(f, a + ".embedding_length", 1, kMaxDim);
  c.mlp_hidden_size = required_int(f, a + ".feed_forward_length", 1, kMaxDim);
  c.n_heads = required_int(f, a + ".attention.head_count", 1, kMaxCount);
  c.n_kv_heads = int_key(f, a + ".attention.head_count_kv", 1, kMaxCount).value_or(c.n_heads);
  c.max_sequence_length = required_int(f, a + ".context_length", 1, int64_t{1} << 30);
  c.rope_theta = number_key(f, a + ".rope.freq_base").value_or(10000.0);
  const auto eps = number_key(f, a + ".attention.layer_norm_rms_epsilon");
  if (!eps) fail(src, ": missing key '", a, ".attention.layer_norm_rms_epsilon' (a LLaDA GGUF file must set it)");
  c.rms_norm_eps = *eps;
  if (c.d_model % c.n_heads != 0) {
    fail(src, ": ", a, ".embedding_length ", c.d_model, " is not a multiple of ", a,
         ".attention.head_count ", c.n_heads);
  }
  for (const char* k : {".rope.dimension_count", ".attention.key_length", ".attention.value_length"}) {
    if (const auto v = int_key(f, a + k, 0, kMaxDim); v && *v != c.head_dim()) {
      fail(src, ": ", a, k, " = ", *v, " but embedding_length / head_count = ", c.head_dim(),
           " (illada rotates and attends over whole heads)");
    }
  }
  if (bool_key(f, a + ".attention.causal").value_or(false)) {
    fail(src, ": ", a, ".attention.causal is true; LLaDA attends bidirectionally");
  }
  if (bool_key(f, "diffusion.shift_logits").value_or(false)) {
    fail(src, ": diffusion.shift_logits is true; LLaDA predicts each masked position itself");
  }
  if (const GgufValue* v = f.find(a + ".rope.scaling.type");
      v && !(v->as_string() && (*v->as_string() == "none" || v->as_string()->empty()))) {
    fail(src, ": ", a, ".rope.scaling.type = ", v->describe(), " is not supported (illada implements plain RoPE)");
  }
  if (const auto v = int_key(f, a + ".expert_count", 0, kMaxCount); v && *v > 0) {
    fail(src, ": ", a, ".expert_count = ", *v, ": mixture-of-experts models are not supported");
  }

  const GgufTensorInfo* emb = f.find_tensor("token_embd.weight");
  if (!emb) fail(src, ": missing tensor 'token_embd.weight' (the token embedding)");
  if (emb->ne.size() < 2 || emb->ne[0] != c.d_model) {
    fail(src, ": tensor 'token_embd.weight' has shape ", ne_str(emb->ne), " but ", a,
         ".embedding_length is ", c.d_model);
  }
  c.embedding_size = emb->rows();
  if (const auto v = int_key(f, a + ".vocab_size", 1, int64_t{1} << 31); v && *v != c.embedding_size) {
    fail(src, ": ", a, ".vocab_size = ", *v, " but tensor 'token_embd.weight' has ", c.embedding_size, " rows");
  }
  const GgufValue* tokens = f.find("tokenizer.ggml.tokens");
  if (tokens && static_cast<int64_t>(tokens->count()) != c.embedding_size) {
    fail(src, ": tokenizer.ggml.tokens lists ", tokens->count(), " tokens but tensor 'token_embd.weight' has ",
         c.embedding_size, " rows");
  }
  c.vocab_size = int_key(f, "illada.vocab_size", 1, c.embedding_size).value_or(c.embedding_size);
  c.weight_tying = f.find_tensor("output.weight") == nullptr;

  auto token_id = [&](const char* key) -> std::optional<int64_t> {
    return int_key(f, str_cat("tokenizer.ggml.", key), 0, c.embedding_size - 1);
  };
  std::optional<int64_t> mask = token_id("mask_token_id");
  if (!mask && tokens) {
    for (uint64_t i = 0; i < tokens->count(); ++i) {
      if (const std::string* t = tokens->as_string(i); t && *t == "<|mdm_mask|>") mask = static_cast<int64_t>(i);
    }
  }
  if (!mask) {
    fail(src, ": no mask token: the file sets neither tokenizer.ggml.mask_token_id nor a "
         "'<|mdm_mask|>' token (LLaDA-8B's is 126336)");
  }
  const std::optional<int64_t> eos = token_id("eos_token_id");
  if (!eos) fail(src, ": missing key 'tokenizer.ggml.eos_token_id' (LLaDA ends answers with EOS)");
  c.mask_token_id = static_cast<int32_t>(*mask);
  c.eos_token_id = static_cast<int32_t>(*eos);
  c.pad_token_id = static_cast<int32_t>(token_id("padding_token_id").value_or(*eos));
  c.bos_token_id = static_cast<int32_t>(token_id("bos_token_id").value_or(-1));
  c.validate(src);
  return c;
}

std::shared_ptr<const TensorStore> llada_tensor_store(std::shared_ptr<const GgufFile> f,
                                                      const ModelConfig& c) {
  const std::string& src = f->path();
  auto store = std::make_shared<TensorStore>(src);
  std::vector<std::string> expected;
  for (const TensorSpec& spec : tensor_specs(c)) expected.push_back(spec.name);
  for (const GgufTensorInfo& t : f->header().tensors) {
    const std::string hf = llada_hf_name(t.name);
    if (hf.empty()) fail(src, ": unexpected tensor '", t.name, "' (not part of the LLaDA layout)");
    if (std::find(expected.begin(), expected.end(), hf) == expected.end()) {
      fail(src, ": unexpected tensor '", t.name, "' for a model with ", c.n_layers, " layers",
           hf == "model.transformer.ff_out.weight" ? "" : " (beyond llada.block_count?)");
    }
  }
  for (const TensorSpec& spec : tensor_specs(c)) {
    const std::string gname = llada_gguf_name(spec.name);
    const GgufTensorInfo* t = f->find_tensor(gname);
    if (!t) fail(src, ": missing tensor '", gname, "' (", spec.name, ")");
    std::vector<int64_t> want(spec.shape.rbegin(), spec.shape.rend());
    if (padded_ne(t->ne) != padded_ne(want)) {
      fail(src, ": tensor '", gname, "' has shape ", ne_str(t->ne), " but the hyper-parameters imply ",
           ne_str(want));
    }
    TensorInfo info;
    info.name = spec.name;
    info.shape = spec.shape;
    switch (t->type) {
      case GgmlType::F32: info.dtype = DType::F32; break;
      case GgmlType::F16: info.dtype = DType::F16; break;
      case GgmlType::BF16: info.dtype = DType::BF16; break;
      default:
        if (!ggml_traits(t->type).quantized) {
          fail(src, ": tensor '", gname, "' has element type ", ggml_type_name(t->type),
               " (expected f32, f16, bf16 or a quantised type)");
        }
        if (spec.role == TensorRole::kNorm) {
          fail(src, ": tensor '", gname, "' is ", ggml_type_name(t->type), "; norms must be f32, f16 or bf16");
        }
        info.block_type = t->type;
    }
    std::span<const std::byte> bytes = f->bytes(*t);
    if (llada_rope_permuted(spec.name)) {
      const int64_t heads = spec.tensor == LayerTensor::kQProj ? c.n_heads : c.n_kv_heads;  // q_proj : k_proj
      auto buf = std::make_shared<std::vector<std::byte>>(bytes.size());
      permute_rope_rows(bytes, *buf, heads, spec.shape[0], bytes.size() / spec.shape[0], /*to_gguf=*/false);
      release_mapped_pages(bytes.data(), bytes.size());  // only the un-permuted copy is read from now on
      store->add(std::move(info), *buf, buf, src);
    } else {
      store->add(std::move(info), bytes, f, src);
    }
  }
  return store;
}

}  // namespace illada
