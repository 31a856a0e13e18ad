// Error handling: ILLADA_CHECK aborts on bugs (with file and line); illada::Error is thrown
// for bad input (a user's file, flag, prompt) and is caught at the CLI boundary.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace illada {

// Bad input: names the file, tensor, flag or field and what was expected.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

template <class... Parts>
std::string str_cat(Parts&&... parts) {
  std::ostringstream os;
  if constexpr (sizeof...(Parts) > 0) (os << ... << std::forward<Parts>(parts));
  return os.str();
}

template <class... Parts>
[[noreturn]] void fail(Parts&&... parts) {
  throw Error(str_cat(std::forward<Parts>(parts)...));
}

[[noreturn]] void check_failed(const char* expr, const char* file, int line, const std::string& msg);

}  // namespace illada

// A broken invariant inside illada: abort with the location.
#define ILLADA_CHECK(cond, ...)                                                          \
  do {                                                                                   \
    if (!(cond)) ::illada::check_failed(#cond, __FILE__, __LINE__, ::illada::str_cat(__VA_ARGS__)); \
  } while (0)

#ifdef NDEBUG
#define ILLADA_DCHECK(cond, ...) \
  do {                           \
  } while (0)
#else
#define ILLADA_DCHECK(cond, ...) ILLADA_CHECK(cond, __VA_ARGS__)
#endif
