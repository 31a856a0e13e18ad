// `--visual`: the canvas being denoised, drawn live on stderr. On a terminal one line is
// redrawn in place (cut to the terminal's width around the block being decoded, so a narrow
// terminal never scrolls a new frame per step); elsewhere (a log file, a pipe) one plain line
// per step, without colour codes.
#pragma once

#include <cstdint>
#include <string>

#include "sample/generate.h"

namespace illada {
namespace tokenizer {
class Tokenizer;
}

namespace cli {

class CanvasView {
 public:
  CanvasView(const tokenizer::Tokenizer* tok, int32_t mask_token_id);
  void draw(const StepInfo& s);
  void finish();  // ends the live line (a newline on a terminal)

  // The visible line for a terminal `columns` wide (exposed for tests).
  std::string render(const StepInfo& s, int columns) const;
  static int display_width(const std::string& utf8);

 private:
  const tokenizer::Tokenizer* tok_;
  int32_t mask_;
  bool tty_;
  bool drawn_ = false;
};

}  // namespace cli
}  // namespace illada
