// config.json parsing: LLaDA's key names, defaults as in LLaDAConfig, and refusal of the
// variants of that config family that this engine does not implement (biases, ALiBi, ...).
#include "model/config.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "util/check.h"
#include "util/file.h"

namespace illada {
namespace {

using nlohmann::json;

int64_t get_int(const json& j, const char* key, const std::string& src, bool required,
                int64_t fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) fail(src, ": missing required key '", key, "'");
    return fallback;
  }
  if (!it->is_number_integer()) fail(src, ": key '", key, "' must be an integer, got ", it->dump());
  if (it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
    fail(src, ": key '", key, "' = ", it->dump(), " is too large");
  }
  return it->get<int64_t>();
}

// Token ids are int32 everywhere: a larger value in the file must not wrap into a valid id.
int32_t get_id(const json& j, const char* key, const std::string& src, bool required, int64_t fallback) {
  const int64_t v = get_int(j, key, src, required, fallback);
  if (v < -1 || v > INT32_MAX) fail(src, ": key '", key, "' = ", v, " is not a token id");
  return static_cast<int32_t>(v);
}

double get_number(const json& j, const char* key, const std::string& src, double fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_number()) fail(src, ": key '", key, "' must be a number, got ", it->dump());
  return it->get<double>();
}

// Keys whose non-default values select model variants illada does not implement.
void refuse_unsupported(const json& j, const std::string& src) {
  struct Rule {
    const char* key;
    json expected;
  };
  const Rule rules[] = {
      {"include_bias", false},        {"include_qkv_bias", false}, {"alibi", false},
      {"rope", true},                 {"scale_logits", false},     {"input_emb_norm", false},
      {"attention_layer_norm", false}, {"clip_qkv", nullptr},      {"block_type", "llama"},
      {"layer_norm_type", "rms"},     {"rope_scaling", nullptr},
  };
  for (const auto& r : rules) {
    auto it = j.find(r.key);
    if (it == j.end() || *it == r.expected) continue;
    if (r.expected.is_null() && it->is_null()) continue;
    fail(src, ": key '", r.key, "' = ", it->dump(), " is not supported (illada implements ",
         r.expected.dump(), ")");
  }
  if (auto it = j.find("activation_type"); it != j.end()) {
    if (*it != "silu" && *it != "swiglu") {
      fail(src, ": key 'activation_type' = ", it->dump(), " is not supported (expected \"silu\")");
    }
  }
}

}  // namespace

InitFn parse_init_fn(const std::string& s) {
  if (s == "normal") return InitFn::kNormal;
  if (s == "mitchell") return InitFn::kMitchell;
  if (s == "kaiming_normal") return InitFn::kKaimingNormal;
  if (s == "fan_in") return InitFn::kFanIn;
  if (s == "full_megatron") return InitFn::kFullMegatron;
  fail("unknown init_fn '", s, "' (expected normal, mitchell, kaiming_normal, fan_in or full_megatron)");
}

const char* init_fn_name(InitFn f) {
  switch (f) {
    case InitFn::kNormal: return "normal";
    case InitFn::kMitchell: return "mitchell";
    case InitFn::kKaimingNormal: return "kaiming_normal";
    case InitFn::kFanIn: return "fan_in";
    case InitFn::kFullMegatron: return "full_megatron";
  }
  return "?";
}

ModelConfig ModelConfig::from_json(const json& j, const std::string& src) {
  if (!j.is_object()) fail(src, ": expected a JSON object");
  refuse_unsupported(j, src);
  ModelConfig c;
  c.d_model = get_int(j, "d_model", src, true, 0);
  c.n_layers = get_int(j, "n_layers", src, true, 0);
  c.n_heads = get_int(j, "n_heads", src, true, 0);
  c.n_kv_heads = get_int(j, "n_kv_heads", src, false, c.n_heads);
  const int64_t mlp_ratio = get_int(j, "mlp_ratio", src, false, 4);
  c.mlp_hidden_size = get_int(j, "mlp_hidden_size", src, false, mlp_ratio * c.d_model);
  c.vocab_size = get_int(j, "vocab_size", src, true, 0);
  c.embedding_size = get_int(j, "embedding_size", src, false, c.vocab_size);
  c.max_sequence_length = get_int(j, "max_sequence_length", src, false, 4096);
  c.rope_theta = get_number(j, "rope_theta", src, 10000.0);
  c.rms_norm_eps = get_number(j, "rms_norm_eps", src, 1e-5);
  if (auto it = j.find("weight_tying"); it != j.end() && !it->is_null()) {
    if (!it->is_boolean()) fail(src, ": key 'weight_tying' must be true or false");
    c.weight_tying = it->get<bool>();
  }
  c.mask_token_id = get_id(j, "mask_token_id", src, true, -1);
  c.eos_token_id = get_id(j, "eos_token_id", src, true, -1);
  c.pad_token_id = get_id(j, "pad_token_id", src, false, c.eos_token_id);
  c.bos_token_id = get_id(j, "bos_token_id", src, false, -1);
  if (auto it = j.find("init_fn"); it != j.end() && !it->is_null()) {
    if (!it->is_string()) fail(src, ": key 'init_fn' must be a string, got ", it->dump());
    try {
      c.init_fn = parse_init_fn(it->get<std::string>());
    } catch (const Error& e) {
      fail(src, ": key 'init_fn': ", e.what());
    }
  }
  c.init_std = get_number(j, "init_std", src, 0.02);
  if (auto it = j.find("init_cutoff_factor"); it != j.end() && !it->is_null()) {
    c.init_cutoff_factor = get_number(j, "init_cutoff_factor", src, 0.0);
  }
  c.validate(src);
  return c;
}

void ModelConfig::validate(const std::string& src) const {
  auto positive = [&](int64_t v, const char* key) {
    if (v <= 0) fail(src, ": key '", key, "' must be positive, got ", v);
  };
  positive(d_model, "d_model");
  positive(n_layers, "n_layers");
  positive(n_heads, "n_heads");
  positive(n_kv_heads, "n_kv_heads");
  positive(mlp_hidden_size, "mlp_hidden_size");
  positive(vocab_size, "vocab_size");
  positive(max_sequence_length, "max_sequence_length");
  // Upper bounds far above any released model (LLaDA-8B: d 4096, 32 layers, mlp 12288, vocab
  // 126464) keep every size product below 2^62, so parameter counts and buffer sizes cannot
  // overflow; whether the model fits in memory is checked where it is allocated.
  auto at_most = [&](int64_t v, int64_t max, const char* key) {
    if (v > max) fail(src, ": key '", key, "' = ", v, " is larger than illada supports (at most ", max, ")");
  };
  at_most(d_model, int64_t{1} << 16, "d_model");
  at_most(n_layers, 1024, "n_layers");
  at_most(mlp_hidden_size, int64_t{1} << 20, "mlp_hidden_size");
  at_most(vocab_size, int64_t{1} << 28, "vocab_size");
  at_most(embedding_size, int64_t{1} << 28, "embedding_size");
  at_most(max_sequence_length, int64_t{1} << 24, "max_sequence_length");
  if (d_model % n_heads != 0) {
    fail(src, ": d_model (", d_model, ") must be divisible by n_heads (", n_heads, ")");
  }
  if (head_dim() % 2 != 0) fail(src, ": head_dim d_model/n_heads = ", head_dim(), " must be even for RoPE");
  if (n_heads % n_kv_heads != 0) {
    fail(src, ": n_heads (", n_heads, ") must be divisible by n_kv_heads (", n_kv_heads, ")");
  }
  if (embedding_size < vocab_size) {
    fail(src, ": embedding_size (", embedding_size, ") must be >= vocab_size (", vocab_size, ")");
  }
  if (!(rope_theta > 0)) fail(src, ": key 'rope_theta' must be positive");
  if (!(rms_norm_eps > 0)) fail(src, ": key 'rms_norm_eps' must be positive");
  if (!(init_std > 0) || !std::isfinite(init_std)) fail(src, ": key 'init_std' must be a positive number");
  if (init_cutoff_factor && (!(*init_cutoff_factor > 0) || !std::isfinite(*init_cutoff_factor))) {
    fail(src, ": key 'init_cutoff_factor' must be a positive number or null");
  }
  auto id = [&](int32_t v, const char* key, bool required) {
    if ((required || v != -1) && (v < 0 || v >= embedding_size)) {
      fail(src, ": key '", key, "' = ", v, " is outside the vocabulary [0, ", embedding_size, ")");
    }
  };
  id(mask_token_id, "mask_token_id", true);
  id(eos_token_id, "eos_token_id", true);
  id(pad_token_id, "pad_token_id", false);
  id(bos_token_id, "bos_token_id", false);
}

int64_t ModelConfig::n_params() const {
  const int64_t hd = head_dim();
  const int64_t attn = d_model * n_heads * hd * 2 + d_model * n_kv_heads * hd * 2;
  const int64_t mlp = 3 * d_model * mlp_hidden_size;
  const int64_t per_layer = attn + mlp + 2 * d_model;
  const int64_t emb = embedding_size * d_model;
  return emb * (weight_tying ? 1 : 2) + n_layers * per_layer + d_model;
}

ModelConfig ModelConfig::load(const std::string& path) {
  const std::string text =
      read_file(path, {.max_bytes = kConfigFileLimits.max_bytes, .what = "Hugging Face config.json"});
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    fail(path, ": invalid JSON: ", e.what());
  }
  return from_json(j, path);
}

json ModelConfig::to_json() const {
  json j = {{"architectures", {"LLaDAModelLM"}},
            {"model_type", "llada"},
            {"d_model", d_model},
            {"n_layers", n_layers},
            {"n_heads", n_heads},
            {"n_kv_heads", n_kv_heads},
            {"mlp_hidden_size", mlp_hidden_size},
            {"mlp_ratio", mlp_hidden_size / d_model},
            {"vocab_size", vocab_size},
            {"embedding_size", embedding_size},
            {"max_sequence_length", max_sequence_length},
            {"rope_theta", rope_theta},
            {"rms_norm_eps", rms_norm_eps},
            {"weight_tying", weight_tying},
            {"mask_token_id", mask_token_id},
            {"eos_token_id", eos_token_id},
            {"pad_token_id", pad_token_id},
            {"activation_type", "silu"},
            {"block_type", "llama"},
            {"layer_norm_type", "rms"},
            {"rope", true},
            {"include_bias", false},
            {"scale_logits", false},
            {"input_emb_norm", false}};
  if (bos_token_id >= 0) j["bos_token_id"] = bos_token_id;
  j["init_fn"] = init_fn_name(init_fn);
  j["init_std"] = init_std;
  j["init_cutoff_factor"] = init_cutoff_factor ? json(*init_cutoff_factor) : json(nullptr);
  return j;
}

}  // namespace illada
