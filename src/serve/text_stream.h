// The text a streaming response may send while the answer is still being denoised: only what
// is final, in order. A diffusion model commits positions in any order, so the final text is the
// decoded run of committed tokens at the start of the answer, minus what could still change:
// a trailing incomplete UTF-8 sequence, and a tail that could still grow into a stop string
// (llama.cpp's server holds back the same). What is sent is always a prefix of the final answer
// (AnswerText), so the concatenated deltas equal the non-streaming text.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace illada::serve {

using Detokenize = std::function<std::string(std::span<const int32_t>)>;

// The final answer of one choice: the answer cut at its first stop string or at max_tokens.
struct AnswerText {
  std::string text;        // valid UTF-8 (invalid bytes replaced by U+FFFD)
  int64_t tokens = 0;      // completion tokens: whole tokens before the stop, at most max_tokens
  bool stopped = false;    // ended by a stop (finish_reason "stop"), else "length"
};

// `answer`: the generated tokens (the canvas after the prompt); `stop_text`/`stop_tokens`: the
// sampler's stop match over the whole answer (find_stop), `stop_found` whether there was one.
AnswerText final_answer(std::span<const int32_t> answer, bool stop_found, int64_t stop_tokens,
                        const std::string& stop_text, int64_t max_tokens, const Detokenize& detokenize);

// Incremental sender for one choice.
class TextStream {
 public:
  TextStream(Detokenize detokenize, std::vector<std::string> stop_strings, int32_t mask_token_id,
             int64_t max_tokens);

  // The new text that became final since the last call, given the current answer canvas
  // (masked positions hold mask_token_id). Empty when nothing new is final.
  std::string update(std::span<const int32_t> answer);

  // The rest of the final answer (its text minus what was sent). Throws Error if what was sent
  // is not a prefix of it (a broken tokenizer decode), which would corrupt the client's text.
  std::string finish(const std::string& final_text);

  const std::string& sent() const { return sent_; }

 private:
  Detokenize detokenize_;
  std::vector<std::string> stops_;
  int32_t mask_;
  int64_t max_tokens_;
  int64_t decoded_tokens_ = -1;  // committed prefix length of the last decode
  bool final_ = false;           // a stop string was seen: nothing more is sent before finish()
  std::string sent_;             // text sent so far (valid UTF-8)
};

// Length of the longest suffix of `text` that is a proper prefix of one of `stops` (text that
// could still become a stop string).
size_t stop_prefix_tail(std::string_view text, std::span<const std::string> stops);

// Length of a trailing UTF-8 sequence that is incomplete but could still be completed by more
// bytes (0 when the text ends on a complete character or on bytes that can never be valid).
size_t incomplete_utf8_tail(std::string_view text);

}  // namespace illada::serve
