// Writing a LLaDA model as a GGUF file of a chosen element type (`illada quantize`): which
// ggml type each tensor gets, as llama.cpp's llama_model_quantize (de3ff815) decides it, and the
// file itself: from a Hugging Face directory, or from a GGUF file whose keys are carried over
// in order (so that quantising an f32 GGUF gives the bytes llama.cpp writes for it).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "io/ggml_types.h"
#include "io/gguf.h"
#include "model/weights.h"

namespace illada {

// The --type of a file: one ggml type for the matrices, or llama.cpp's q4_K_M mix.
enum class FileType { kF32, kF16, kBF16, kQ8_0, kQ4_0, kQ4_K, kQ6_K, kQ4_K_M };

struct FileTypeInfo {
  FileType type;
  const char* name;       // as --type spells it: "q4_k_m"
  uint32_t llama_ftype;   // general.file_type (llama.cpp's enum llama_ftype)
  GgmlType base;          // the type of most matrices
  bool pure;              // every matrix gets `base` (no llama.cpp mixing rules)
};
const FileTypeInfo& file_type_info(FileType t);
// "f32" | "f16" | "bf16" | "q8_0" | "q4_0" | "q4_k" | "q6_k" | "q4_k_m" (any case); nullopt
// for anything else.
std::optional<FileType> parse_file_type(const std::string& s);
std::string file_type_names();  // "f32, f16, ..." for messages

// --tensor-type PATTERN=TYPE: tensors whose GGUF name matches the regular expression (searched,
// lower-cased, as llama.cpp's quantize tool does) get TYPE; the first matching pattern wins.
struct TensorTypeOverride {
  std::string pattern;
  GgmlType type;
};
// Parses "PATTERN=TYPE" (TYPE a ggml type name such as q6_K, q8_0, f16). Throws Error naming
// the flag.
TensorTypeOverride parse_tensor_type_override(const std::string& arg);

// One tensor of the output, in file order.
struct QuantizedTensor {
  std::string name;         // GGUF name
  std::string source_name;  // checkpoint name
  std::vector<int64_t> ne;  // ggml order
  std::string source_type;  // "f32", "bf16", "q4_K", ...
  GgmlType type;            // what it is written as
};

// The ggml type of every tensor of a model with config `c` whose source types are
// `source_type(name)` (a ggml type; matrices given in f32/f16/bf16 or already quantised):
// llama.cpp's choice for the file type (output/tied embedding -> q6_K unless the base is q8_0;
// q4_K_M: attn_v and ffn_down of the layers use_more_bits picks -> q6_K; fallbacks when a row
// is not whole blocks: q4_K -> q5_0, q6_K -> q8_0, else f16), then the overrides (which llama.cpp
// applies to quantised bases only; illada applies them to every base). Norms keep their type
// when the source is a GGUF file (as llama_model_quantize does) and become f32 when it is a
// checkpoint (as llama.cpp's converter writes them; its kernels expect f32 norms). In GGUF
// file order: global tensors, then layer by layer, names sorted within each.
std::vector<QuantizedTensor> plan_quantization(
    const ModelConfig& c, FileType type, const std::vector<TensorTypeOverride>& overrides,
    const std::function<GgmlType(const std::string& hf_name)>& source_type, bool checkpoint_source);

struct QuantizeOptions {
  FileType type = FileType::kF32;
  std::vector<TensorTypeOverride> overrides;
  // Keys written after the hyper-parameters when the source is a directory (the tokenizer's:
  // tokenizer/gguf_vocab.h); a GGUF source brings its own keys.
  std::vector<std::pair<std::string, GgufValue>> extra_kv;
  std::string name;  // general.name for a directory source ("" = none)
  // Called before each tensor is converted (i of n), for progress output.
  std::function<void(size_t i, size_t n, const QuantizedTensor& t)> progress;
};

struct QuantizeResult {
  std::vector<QuantizedTensor> tensors;
  uint64_t bytes = 0;        // size of the file written
  int64_t n_params = 0;
};

// The checks of quantize's arguments that read no model: `out_path` is not the source, and a
// `name` is given only for a directory source (a GGUF input keeps its own). `out_label` and
// `name_label` name the arguments in the message ("--out" / "out_path", "--name" / "name").
// Throws Error.
void check_quantize_arguments(const std::string& source_path, const std::string& out_path,
                              const std::string& out_label, const std::string& name,
                              const std::string& name_label);

// The options `illada quantize` (and the C API's illada_quantize) build for a source, after
// check_quantize_arguments: for a model directory, the tokenizer's keys (tokenizer/gguf_vocab.h;
// what its GGUF form cannot carry is appended to `warnings`) and general.name (`name`, or the
// directory's name); a GGUF source keeps its own keys and name.
QuantizeOptions quantize_options(const std::string& source_path, const std::string& out_path,
                                 const std::string& out_label, FileType type,
                                 std::vector<TensorTypeOverride> overrides, const std::string& name,
                                 const std::string& name_label, std::vector<std::string>& warnings);

// Writes the model at `source_path` (a model directory or a LLaDA GGUF file) to `out_path`
// (atomically). Throws Error naming the tensor on non-finite weights, scales that overflow
// half precision, or a quantised source type that cannot be converted.
QuantizeResult quantize_model(const std::string& source_path, const std::string& out_path,
                              const QuantizeOptions& options);

}  // namespace illada
