// Model hyper-parameters, read from a Hugging Face LLaDA-style config.json and validated.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace illada {

// Weight initialisation of the official model code (configuration_llada.py InitFnType).
enum class InitFn { kNormal, kMitchell, kKaimingNormal, kFanIn, kFullMegatron };
InitFn parse_init_fn(const std::string& s);  // "normal", "mitchell", ...; throws Error
const char* init_fn_name(InitFn f);

struct ModelConfig {
  int64_t d_model = 0;
  int64_t n_layers = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;       // n_heads for multi-head attention (LLaDA-8B)
  int64_t mlp_hidden_size = 0;  // SwiGLU inner width
  int64_t vocab_size = 0;       // ids the tokenizer may produce
  int64_t embedding_size = 0;   // rows of wte and of the head (>= vocab_size): logits width
  int64_t max_sequence_length = 4096;
  double rope_theta = 10000.0;
  double rms_norm_eps = 1e-5;
  bool weight_tying = false;  // head = wte (iLLaDA) or its own ff_out (LLaDA)
  int32_t mask_token_id = -1;
  int32_t eos_token_id = -1;
  int32_t pad_token_id = -1;
  int32_t bos_token_id = -1;  // -1 when the config does not say
  // How fresh weights are drawn (config.json init_fn, init_std, init_cutoff_factor; defaults
  // of configuration_llada.py: normal, 0.02, no cutoff). Only `illada init` and training from
  // a config read them.
  InitFn init_fn = InitFn::kNormal;
  double init_std = 0.02;
  std::optional<double> init_cutoff_factor;

  int64_t head_dim() const { return d_model / n_heads; }
  int64_t n_params() const;  // every weight, counting a tied head once
  // Reads and validates; throws illada::Error naming `source` and the key.
  static ModelConfig from_json(const nlohmann::json& j, const std::string& source);
  static ModelConfig load(const std::string& path);  // a config.json file
  nlohmann::json to_json() const;                    // LLaDA-style keys, loadable by from_json
  void validate(const std::string& source) const;
};

}  // namespace illada
