// Derived answer lengths (see lengths.h).
#include "sample/lengths.h"

#include "util/check.h"

namespace illada {

AnswerLengths derive_lengths(const LengthRequest& r, int64_t default_length, int64_t prompt_tokens,
                             int64_t context) {
  const std::string len_opt = str_cat("`", r.length_option, "`");
  AnswerLengths l;
  if (r.length) {
    if (*r.length <= 0) fail(len_opt, " (", *r.length, ") must be positive");
    l.length = *r.length;
  } else {
    l.length = default_length;
    if (prompt_tokens >= 0) {
      const int64_t room = context - prompt_tokens;
      if (room < 1) {
        fail("the prompt (", prompt_tokens, " tokens) fills the model's context of ", context,
             " tokens (max_sequence_length): no room for an answer; shorten it");
      }
      if (room < l.length) {
        const int64_t unit = r.block_length ? *r.block_length : kDefaultBlockLength;
        l.length = room >= unit ? room / unit * unit : room;
      }
    }
  }
  if (r.block_length && *r.block_length <= 0) fail("`block_length` (", *r.block_length, ") must be positive");
  if (r.steps && *r.steps <= 0) fail("`steps` (", *r.steps, ") must be positive");
  l.block_length = r.block_length ? *r.block_length : (l.length % kDefaultBlockLength == 0 ? kDefaultBlockLength : l.length);
  if (r.variable_length) {
    if (l.length < l.block_length) {
      fail(len_opt, " (", l.length, ") is shorter than one block (`block_length` ", l.block_length, ")");
    }
    l.steps = r.steps ? *r.steps : l.block_length;
    if (prompt_tokens >= 0 && context - prompt_tokens < l.block_length) {
      fail("the prompt (", prompt_tokens, " tokens) leaves less than one block (", l.block_length,
           " tokens) of the model's context of ", context, " tokens (max_sequence_length)");
    }
    return l;
  }
  if (l.length % l.block_length != 0) {
    fail(len_opt, " (", l.length, ") must be a multiple of `block_length` (", l.block_length, ")",
         r.length ? "" : str_cat("; ", l.length, " is the default that fits the prompt: give ", len_opt));
  }
  l.steps = r.steps ? *r.steps : l.length;
  if (prompt_tokens >= 0 && prompt_tokens + l.length > context) {
    fail("the prompt (", prompt_tokens, " tokens) plus ", len_opt, " ", l.length,
         " exceeds the model's context of ", context, " tokens (max_sequence_length)");
  }
  return l;
}

}  // namespace illada
