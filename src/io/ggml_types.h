// The tensor element formats of ggml / GGUF files (f32, f16, bf16 and the block-quantised
// q8_0, q4_0, q4_K, q6_K, ...): their numeric ids, names and block geometry, as llama.cpp
// defines them (ggml.h of commit de3ff815). A block holds `block_size` consecutive values of a
// row in `type_size` bytes; rows are whole blocks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace illada {

enum class GgmlType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
  NVFP4 = 40,
  Q1_0 = 41,
  Q2_0 = 42,
};

struct GgmlTypeTraits {
  GgmlType type;
  std::string_view name;  // as ggml_type_name() spells it ("q4_K", "bf16")
  uint32_t block_size;    // values per block
  uint32_t type_size;     // bytes per block
  bool quantized;
};

// Every type a GGUF file may hold (ids 4, 5, 31-33 and 36-38 were removed from ggml).
inline constexpr GgmlTypeTraits kGgmlTypes[] = {
    {GgmlType::F32, "f32", 1, 4, false},          {GgmlType::F16, "f16", 1, 2, false},
    {GgmlType::Q4_0, "q4_0", 32, 18, true},       {GgmlType::Q4_1, "q4_1", 32, 20, true},
    {GgmlType::Q5_0, "q5_0", 32, 22, true},       {GgmlType::Q5_1, "q5_1", 32, 24, true},
    {GgmlType::Q8_0, "q8_0", 32, 34, true},       {GgmlType::Q8_1, "q8_1", 32, 36, true},
    {GgmlType::Q2_K, "q2_K", 256, 84, true},      {GgmlType::Q3_K, "q3_K", 256, 110, true},
    {GgmlType::Q4_K, "q4_K", 256, 144, true},     {GgmlType::Q5_K, "q5_K", 256, 176, true},
    {GgmlType::Q6_K, "q6_K", 256, 210, true},     {GgmlType::Q8_K, "q8_K", 256, 292, true},
    {GgmlType::IQ2_XXS, "iq2_xxs", 256, 66, true}, {GgmlType::IQ2_XS, "iq2_xs", 256, 74, true},
    {GgmlType::IQ3_XXS, "iq3_xxs", 256, 98, true}, {GgmlType::IQ1_S, "iq1_s", 256, 50, true},
    {GgmlType::IQ4_NL, "iq4_nl", 32, 18, true},   {GgmlType::IQ3_S, "iq3_s", 256, 110, true},
    {GgmlType::IQ2_S, "iq2_s", 256, 82, true},    {GgmlType::IQ4_XS, "iq4_xs", 256, 136, true},
    {GgmlType::I8, "i8", 1, 1, false},            {GgmlType::I16, "i16", 1, 2, false},
    {GgmlType::I32, "i32", 1, 4, false},          {GgmlType::I64, "i64", 1, 8, false},
    {GgmlType::F64, "f64", 1, 8, false},          {GgmlType::IQ1_M, "iq1_m", 256, 56, true},
    {GgmlType::BF16, "bf16", 1, 2, false},        {GgmlType::TQ1_0, "tq1_0", 256, 54, true},
    {GgmlType::TQ2_0, "tq2_0", 256, 66, true},    {GgmlType::MXFP4, "mxfp4", 32, 17, true},
    {GgmlType::NVFP4, "nvfp4", 64, 36, true},     {GgmlType::Q1_0, "q1_0", 128, 18, true},
    {GgmlType::Q2_0, "q2_0", 64, 18, true},
};

// Traits of a type id read from a file; nullptr for an id ggml does not (or no longer) define.
inline constexpr const GgmlTypeTraits* ggml_type_traits(uint32_t id) {
  for (const GgmlTypeTraits& t : kGgmlTypes) {
    if (static_cast<uint32_t>(t.type) == id) return &t;
  }
  return nullptr;
}

inline constexpr const GgmlTypeTraits& ggml_traits(GgmlType t) {
  const GgmlTypeTraits* p = ggml_type_traits(static_cast<uint32_t>(t));
  return *p;  // every enumerator has an entry
}

inline constexpr std::string_view ggml_type_name(GgmlType t) { return ggml_traits(t).name; }

// The type whose name is `name`, ignoring ASCII case ("Q4_K", "q4_k", "BF16").
inline std::optional<GgmlType> ggml_type_from_name(std::string_view name) {
  auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
  for (const GgmlTypeTraits& t : kGgmlTypes) {
    if (t.name.size() != name.size()) continue;
    bool same = true;
    for (size_t i = 0; i < name.size() && same; ++i) same = lower(t.name[i]) == lower(name[i]);
    if (same) return t.type;
  }
  return std::nullopt;
}

// Bytes of one row of `cols` values (cols must be a multiple of the block size).
inline constexpr uint64_t ggml_row_bytes(GgmlType t, int64_t cols) {
  const GgmlTypeTraits& tr = ggml_traits(t);
  return static_cast<uint64_t>(cols) / tr.block_size * tr.type_size;
}

}  // namespace illada
