// llama.cpp's own diffusion sampler (examples/diffusion/diffusion.cpp of commit de3ff815,
// compiled from the source scripts/fetch_test_assets.sh takes from the git bundle of npm
// node-llama-cpp@3.22.1) over the prebuilt libllama, driven as llama-diffusion-cli drives LLaDA,
// but on token ids, so that bench/generate_compare.sh can time it next to `illada generate` on
// the same GGUF file and prompt. Not part of illada.
//
//   llama_diffusion MODEL.gguf PROMPT_IDS GEN_LENGTH BLOCK_LENGTH STEPS_PER_BLOCK [THREADS]
//
// Prints one JSON line: the generated ids, the number of forward passes llama.cpp ran, and the
// seconds of diffusion_generate alone (the model load excluded).
//
// Settings, as llama-diffusion-cli runs a LLaDA file (examples/diffusion/README.md): block
// schedule, confidence-based order (algorithm 4), top-k 40 and top-p 0.95 (the CLI's
// defaults), temperature 0, seed 0, no classifier-free guidance, shift_logits from the file
// (`diffusion.shift_logits`, false in files illada writes). llama.cpp counts blocks over the whole
// canvas, prompt included (max_length / block_length of them, the first starting where the
// prompt ends), and wants the total step count to be a multiple of that count: STEPS_PER_BLOCK
// times that count is passed, so each block of the answer gets STEPS_PER_BLOCK steps as in
// LLaDA's generate(). The blocks past the end of the canvas run one forward pass each before
// they find no masked position (counted in "forwards").
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "diffusion.h"
#include "ggml-backend.h"
#include "llama.h"
#include "tools/llama_cpp/harness.h"

namespace {

int usage() {
  std::fprintf(stderr,
               "usage: llama_diffusion MODEL.gguf PROMPT_IDS GEN_LENGTH BLOCK_LENGTH STEPS_PER_BLOCK "
               "[THREADS]\n");
  return 2;
}

bool parse_int(const char* s, int* out) {
  char* end = nullptr;
  const long v = std::strtol(s, &end, 10);
  if (end == s || *end != '\0' || v <= 0 || v > (1 << 20)) return false;
  *out = static_cast<int>(v);
  return true;
}

struct Counter {
  int forwards = 0;
};

// Called by diffusion_generate before each forward pass.
bool count_step(int32_t, int32_t, const llama_token*, int32_t, void* user) {
  ++static_cast<Counter*>(user)->forwards;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 6) return usage();
  const std::vector<llama_token> prompt = llama_harness::parse_ids(argv[2]);
  int gen = 0, block = 0, steps_per_block = 0, threads = 2;
  if (prompt.empty() || !parse_int(argv[3], &gen) || !parse_int(argv[4], &block) ||
      !parse_int(argv[5], &steps_per_block) || (argc > 6 && !parse_int(argv[6], &threads))) {
    return usage();
  }
  const int total = static_cast<int>(prompt.size()) + gen;
  if (total % block != 0) {
    std::fprintf(stderr,
                 "llama_diffusion: llama.cpp needs prompt + answer (%d) to be a multiple of the block length (%d)\n",
                 total, block);
    return 2;
  }

  llama_harness::init_backends();
  llama_model* model = llama_harness::load_model(argv[1], "llama_diffusion");
  if (!model) return 1;
  if (!llama_model_is_diffusion(model)) {
    std::fprintf(stderr, "llama_diffusion: %s is not a diffusion model for llama.cpp\n", argv[1]);
    llama_model_free(model);
    return 1;
  }
  // llama-diffusion-cli: max_length = n_ubatch, the whole canvas.
  llama_context* ctx =
      llama_harness::one_batch_context(model, static_cast<uint32_t>(total), threads, "llama_diffusion", argv[1]);
  if (!ctx) {
    llama_model_free(model);
    return 1;
  }

  diffusion_params dp;
  dp.mask_token_id = llama_vocab_mask(llama_model_get_vocab(model));
  char mask[16];
  if (dp.mask_token_id == LLAMA_TOKEN_NULL &&
      llama_model_meta_val_str(model, "tokenizer.ggml.mask_token_id", mask, sizeof(mask)) > 0) {
    dp.mask_token_id = static_cast<llama_token>(std::atoi(mask));  // a file without a vocabulary
  }
  if (dp.mask_token_id == LLAMA_TOKEN_NULL) {
    std::fprintf(stderr, "llama_diffusion: %s names no mask token (tokenizer.ggml.mask_token_id)\n", argv[1]);
    llama_free(ctx);
    llama_model_free(model);
    return 1;
  }
  char shift[8];
  dp.shift_logits = llama_model_meta_val_str(model, "diffusion.shift_logits", shift, sizeof(shift)) >= 0
                        ? std::strcmp(shift, "true") == 0
                        : true;  // llama-diffusion-cli's default for files without the key
  dp.schedule = DIFFUSION_TRANSFER_SCHEDULE_BLOCK_BASED;
  dp.block_length = block;
  dp.algorithm = DIFFUSION_ALGORITHM_CONFIDENCE_BASED;
  dp.steps = steps_per_block * (total / block);
  dp.max_length = total;
  dp.temperature = 0.0f;
  dp.top_k = 40;
  dp.top_p = 0.95f;
  dp.seed = 0;
  Counter counter;
  dp.step_callback = count_step;
  dp.step_callback_user_data = &counter;

  std::vector<llama_token> out(static_cast<size_t>(total));
  int32_t n_generated = 0;
  const auto t0 = std::chrono::steady_clock::now();
  diffusion_generate(ctx, prompt.data(), out.data(), static_cast<int32_t>(prompt.size()), dp, n_generated);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (n_generated <= 0) {
    std::fprintf(stderr, "llama_diffusion: diffusion_generate failed\n");
    llama_free(ctx);
    llama_model_free(model);
    return 1;
  }
  std::printf("{\"ids\": [");
  for (int i = static_cast<int>(prompt.size()); i < total; ++i) {
    std::printf("%s%d", i > static_cast<int>(prompt.size()) ? ", " : "", out[static_cast<size_t>(i)]);
  }
  std::printf("], \"forwards\": %d, \"seconds\": %.3f, \"shift_logits\": %s}\n", counter.forwards, seconds,
              dp.shift_logits ? "true" : "false");
  llama_free(ctx);
  llama_model_free(model);
  return 0;
}
