// Final text of a choice and the held-back streaming of it (text_stream.h).
#include "serve/text_stream.h"

#include <algorithm>

#include "tokenizer/utf8.h"
#include "util/check.h"

namespace illada::serve {

size_t stop_prefix_tail(std::string_view text, std::span<const std::string> stops) {
  size_t longest = 0;
  for (const std::string& s : stops) {
    for (size_t l = std::min(s.size() - (s.empty() ? 0 : 1), text.size()); l > longest; --l) {
      if (text.substr(text.size() - l) == std::string_view(s).substr(0, l)) {
        longest = l;
        break;
      }
    }
  }
  return longest;
}

size_t incomplete_utf8_tail(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  // The lead byte of the last sequence is at most 3 bytes back (a complete 4-byte sequence
  // ends the text with nothing held).
  for (size_t back = 1; back <= std::min<size_t>(3, n); ++back) {
    const unsigned char b0 = p[n - back];
    if ((b0 & 0xC0) == 0x80) continue;  // a continuation byte: the lead is further back
    int need;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (b0 >= 0xC2 && b0 <= 0xDF) {
      need = 2;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      need = 3;
      if (b0 == 0xE0) lo = 0xA0;
      if (b0 == 0xED) hi = 0x9F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      need = 4;
      if (b0 == 0xF0) lo = 0x90;
      if (b0 == 0xF4) hi = 0x8F;
    } else {
      return 0;  // ASCII or a byte that never starts a sequence
    }
    if (static_cast<int>(back) >= need) return 0;  // complete (or invalid: sent as U+FFFD)
    if (back >= 2 && (p[n - back + 1] < lo || p[n - back + 1] > hi)) return 0;
    return back;
  }
  return 0;
}

AnswerText final_answer(std::span<const int32_t> answer, bool stop_found, int64_t stop_tokens,
                        const std::string& stop_text, int64_t max_tokens, const Detokenize& detokenize) {
  const int64_t cut = std::min<int64_t>(max_tokens, static_cast<int64_t>(answer.size()));
  std::string cut_text = detokenize(answer.first(static_cast<size_t>(cut)));
  AnswerText a;
  // A stop counts when its text lies within the first max_tokens tokens' text.
  if (stop_found && stop_tokens <= cut && stop_text.size() <= cut_text.size()) {
    a.stopped = true;
    a.tokens = stop_tokens;
    a.text = tokenizer::utf8_lossy(stop_text);
  } else {
    a.tokens = cut;
    a.text = tokenizer::utf8_lossy(cut_text);
  }
  return a;
}

TextStream::TextStream(Detokenize detokenize, std::vector<std::string> stop_strings, int32_t mask_token_id,
                       int64_t max_tokens)
    : detokenize_(std::move(detokenize)), stops_(std::move(stop_strings)), mask_(mask_token_id),
      max_tokens_(max_tokens) {
  std::erase_if(stops_, [](const std::string& s) { return s.empty(); });
}

std::string TextStream::update(std::span<const int32_t> answer) {
  if (final_) return {};
  const auto first_mask = std::find(answer.begin(), answer.end(), mask_);
  const int64_t committed = std::min<int64_t>(first_mask - answer.begin(), max_tokens_);
  if (committed == decoded_tokens_) return {};
  decoded_tokens_ = committed;
  std::string raw = detokenize_(answer.first(static_cast<size_t>(committed)));
  size_t keep = std::string::npos;
  for (const std::string& s : stops_) keep = std::min(keep, raw.find(s));
  // A tail that may still grow into a stop string; when it starts before the stop found, that
  // longer stop may yet end the answer earlier (stops "bc" and "abcd" over committed "xabc").
  const size_t tail_start = raw.size() - stop_prefix_tail(raw, stops_);
  if (keep != std::string::npos && keep <= tail_start) {
    final_ = true;  // the answer ends at this stop: everything before it is final
    raw.resize(keep);
  } else {
    raw.resize(std::min(keep, tail_start));
    raw.resize(raw.size() - incomplete_utf8_tail(raw));
  }
  const std::string text = tokenizer::utf8_lossy(raw);
  if (text.size() <= sent_.size() || text.compare(0, sent_.size(), sent_) != 0) return {};
  std::string delta = text.substr(sent_.size());
  sent_ = text;
  return delta;
}

std::string TextStream::finish(const std::string& final_text) {
  if (final_text.compare(0, sent_.size(), sent_) != 0) {
    fail("streamed text '", sent_, "' is not a prefix of the final answer '", final_text, "'");
  }
  std::string rest = final_text.substr(sent_.size());
  sent_ = final_text;
  final_ = true;
  return rest;
}

}  // namespace illada::serve
