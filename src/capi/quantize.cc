// The C API's quantiser: illada_quantize writes what `illada quantize` writes (model/quantize.h),
// with the options checked first (INVALID_ARGUMENT naming the field) and everything the model
// and its conversion throw reported as ILLADA_ERROR_LOAD.
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "capi/handles.h"
#include "model/quantize.h"

using namespace illada;
using namespace illada::capi;

namespace {

// The options `p` asks for; throws ApiError(INVALID_ARGUMENT) naming a bad field.
QuantizeOptions checked_options(const char* path, const char* out_path, const illada_quantize_params& p,
                                std::vector<std::string>& warnings) {
  auto invalid = [](const std::string& m) { return ApiError(ILLADA_ERROR_INVALID_ARGUMENT, m); };
  if (path == nullptr || *path == '\0') throw invalid("path is NULL or empty");
  if (out_path == nullptr || *out_path == '\0') throw invalid("out_path is NULL or empty");
  if (p.type == nullptr) throw invalid(str_cat("type is NULL (expected one of ", file_type_names(), ")"));
  const auto type = parse_file_type(p.type);
  if (!type) throw invalid(str_cat("type '", p.type, "': expected one of ", file_type_names()));
  if (p.n_threads < 0) throw invalid(str_cat("n_threads ", p.n_threads, " is negative (0: the default)"));
  if (p.n_tensor_types > 0 && p.tensor_types == nullptr) {
    throw invalid(str_cat("tensor_types is NULL but n_tensor_types is ", p.n_tensor_types));
  }
  std::vector<TensorTypeOverride> overrides;
  for (size_t i = 0; i < p.n_tensor_types; ++i) {
    if (p.tensor_types[i] == nullptr) throw invalid(str_cat("tensor_types[", i, "] is NULL"));
    try {
      overrides.push_back(parse_tensor_type_override(p.tensor_types[i]));
    } catch (const Error& e) {
      throw invalid(str_cat("tensor_types[", i, "]: ", e.what()));
    }
  }
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(path, ec)) throw ApiError(ILLADA_ERROR_LOAD, str_cat(path, ": no such file or directory"));
  const std::string name = p.name ? p.name : "";
  try {
    check_quantize_arguments(path, out_path, "out_path", name, "name");
  } catch (const Error& e) {
    throw invalid(e.what());
  }
  if (fs::is_directory(out_path, ec)) throw invalid(str_cat("out_path ", out_path, " is a directory; give a file name"));
  const fs::path dir = fs::absolute(out_path, ec).parent_path();
  if (!fs::is_directory(dir, ec)) throw invalid(str_cat("out_path ", out_path, ": directory ", dir.string(), " does not exist"));
  if (::access(dir.c_str(), W_OK) != 0) throw invalid(str_cat("out_path ", out_path, ": directory ", dir.string(), " is not writable"));
  try {
    return quantize_options(path, out_path, "out_path", *type, std::move(overrides), name, "name", warnings);
  } catch (const ApiError&) {
    throw;
  } catch (const Error& e) {
    throw ApiError(ILLADA_ERROR_LOAD, e.what());
  }
}

void log_to(const illada_quantize_params& p, illada_log_level level, const std::string& message) {
  if (p.log_callback) p.log_callback(level, message.c_str(), p.log_user_data);
}

}  // namespace

illada_quantize_params illada_quantize_default_params(void) {
  illada_quantize_params p{};
  p.type = "q8_0";
  return p;
}

illada_status illada_quantize(const char* path, const char* out_path, const illada_quantize_params* params,
                              char* error, size_t error_size) {
  copy_message("", error, error_size);
  const illada_quantize_params p = params ? *params : illada_quantize_default_params();
  std::string message;
  illada_status status = ILLADA_OK;
  try {
    std::vector<std::string> warnings;
    QuantizeOptions opts = checked_options(path, out_path, p, warnings);
    for (const std::string& w : warnings) log_to(p, ILLADA_LOG_WARN, w);
    if (p.progress_callback) {
      opts.progress = [&p](size_t i, size_t n, const QuantizedTensor&) {
        if (p.progress_callback(static_cast<int64_t>(i), static_cast<int64_t>(n), p.progress_user_data) != 0) {
          throw ApiError(ILLADA_ERROR_CANCELLED, "cancelled by the progress callback (no file written)");
        }
      };
    }
    ThreadScope threads(p.n_threads);
    QuantizeResult r;
    try {
      r = quantize_model(path, out_path, opts);
    } catch (const ApiError&) {
      throw;
    } catch (const Error& e) {
      throw ApiError(ILLADA_ERROR_LOAD, e.what());
    }
    const double bpw = r.n_params ? 8.0 * static_cast<double>(r.bytes) / static_cast<double>(r.n_params) : 0.0;
    log_to(p, ILLADA_LOG_INFO, str_cat("wrote ", out_path, ": ", file_type_info(opts.type).name, ", ",
                                       r.tensors.size(), " tensors, ", r.bytes, " bytes, ", bpw, " bits per weight"));
  } catch (...) {
    status = current_status(message);
    message = str_cat("illada_quantize: ", message);
    log_to(p, ILLADA_LOG_ERROR, message);
  }
  copy_message(message, error, error_size);
  return status;
}
