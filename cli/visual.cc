// The live canvas of --visual (see visual.h).
#include "cli/visual.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace illada::cli {
namespace {

int terminal_columns() {
  struct winsize w;
  if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &w) == 0 && w.ws_col > 0) return w.ws_col;
  if (const char* c = std::getenv("COLUMNS")) {
    const int v = std::atoi(c);
    if (v > 0) return v;
  }
  return 80;
}

// Printable form of a decoded token: control characters would move the cursor.
std::string printable(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\n') {
      out += "\xe2\x8f\x8e";  // U+23CE return symbol
    } else if (c == '\t' || c == '\r') {
      out += ' ';
    } else if (c < 0x20 || c == 0x7f) {
      out += "\xc2\xb7";  // U+00B7 middle dot
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

uint32_t next_code_point(const std::string& s, size_t& i) {
  const auto c = static_cast<unsigned char>(s[i]);
  int len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
  uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
  for (int k = 1; k < len && i + k < s.size(); ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  i += len;
  return cp;
}

bool wide(uint32_t cp) {  // East Asian wide and emoji ranges take two columns
  return (cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0xA4CF) || (cp >= 0xAC00 && cp <= 0xD7A3) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0xFE30 && cp <= 0xFE4F) || (cp >= 0xFF00 && cp <= 0xFF60) ||
         (cp >= 0xFFE0 && cp <= 0xFFE6) || (cp >= 0x1F300 && cp <= 0x1F64F) || (cp >= 0x1F900 && cp <= 0x1F9FF) ||
         (cp >= 0x20000 && cp <= 0x3FFFD);
}

}  // namespace

int CanvasView::display_width(const std::string& s) {
  int w = 0;
  for (size_t i = 0; i < s.size();) {
    const uint32_t cp = next_code_point(s, i);
    if (cp >= 0x300 && cp <= 0x36F) continue;  // combining marks
    w += wide(cp) ? 2 : 1;
  }
  return w;
}

CanvasView::CanvasView(const tokenizer::Tokenizer* tok, int32_t mask_token_id)
    : tok_(tok), mask_(mask_token_id), tty_(isatty(STDERR_FILENO)) {}

std::string CanvasView::render(const StepInfo& s, int columns) const {
  std::vector<std::string> cells;
  int64_t anchor = -1;  // last committed position (generated coordinates), else the first mask
  for (size_t p = s.prompt_length; p < s.canvas.size(); ++p) {
    const int32_t id = s.canvas[p];
    if (id == mask_) {
      cells.push_back("\xe2\x96\x91");  // U+2591 light shade
    } else if (tok_) {
      cells.push_back(tok_->is_special(id) ? std::string("\xc2\xb7") : printable(tok_->decode({&id, 1}, true)));
    } else {
      cells.push_back(std::to_string(id) + " ");
    }
  }
  for (int32_t p : s.committed) anchor = std::max<int64_t>(anchor, p - s.prompt_length);
  if (anchor < 0) {
    for (size_t i = 0; i < cells.size(); ++i) {
      if (s.canvas[s.prompt_length + i] == mask_) {
        anchor = static_cast<int64_t>(i);
        break;
      }
    }
  }
  const int64_t n = static_cast<int64_t>(cells.size());
  std::vector<int> w(cells.size());
  int total = 0;
  for (int64_t i = 0; i < n; ++i) total += (w[i] = display_width(cells[i]));
  if (total <= columns) {
    std::string out;
    for (const auto& c : cells) out += c;
    return out;
  }
  // Cut a window that shows the anchor with a few cells after it; "…" marks what is hidden.
  const int avail = std::max(1, columns - 2);
  int64_t end = std::min(n, std::max<int64_t>(anchor, 0) + 1);
  int used = 0;
  for (int64_t i = 0; i < end; ++i) used += w[i];
  int64_t begin = 0;
  while (used > avail && begin < end) used -= w[begin++];
  for (int extra = 0; end < n && extra < 8 && used + w[end] <= avail; ++extra) used += w[end++];
  while (begin > 0 && used + w[begin - 1] <= avail) used += w[--begin];
  std::string out = begin > 0 ? "\xe2\x80\xa6" : "";
  for (int64_t i = begin; i < end; ++i) out += cells[i];
  if (end < n) out += "\xe2\x80\xa6";
  return out;
}

void CanvasView::draw(const StepInfo& s) {
  char head[64];
  std::snprintf(head, sizeof head, "[block %lld step %lld] ", static_cast<long long>(s.block),
                static_cast<long long>(s.step));
  if (!tty_) {  // a log: every frame on its own line, no escape codes
    std::fprintf(stderr, "%s%s\n", head, render(s, 1 << 30).c_str());
    return;
  }
  const int columns = terminal_columns() - 1;  // the last column would wrap on some terminals
  const std::string body = render(s, std::max(8, columns - display_width(head)));
  std::fprintf(stderr, "\r\033[2K\033[36m%s\033[0m%s", head, body.c_str());
  std::fflush(stderr);
  drawn_ = true;
}

void CanvasView::finish() {
  if (tty_ && drawn_) std::fprintf(stderr, "\n");
  drawn_ = false;
}

}  // namespace illada::cli
