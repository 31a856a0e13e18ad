// The LLaDA layout of a GGUF file, as llama.cpp's converter writes it and llama.cpp reads it
// (architecture "llada", llama.cpp de3ff815: conversion/llada.py, src/models/llada.cpp):
//
//   general.architecture = "llada"; llada.{context_length, embedding_length, block_count,
//   feed_forward_length, attention.head_count, attention.head_count_kv, rope.freq_base (f32),
//   attention.layer_norm_rms_epsilon (f32), vocab_size, rope.dimension_count} and
//   llada.attention.causal = false, diffusion.shift_logits = false; special ids in
//   tokenizer.ggml.{mask,eos,padding,bos}_token_id.
//
//   token_embd.weight [vocab, d]        model.transformer.wte.weight
//   blk.N.attn_norm.weight [d]          model.transformer.blocks.N.attn_norm.weight
//   blk.N.attn_q.weight                 ...q_proj.weight, rows permuted for RoPE (below)
//   blk.N.attn_k.weight                 ...k_proj.weight, rows permuted for RoPE
//   blk.N.attn_v.weight / attn_output   ...v_proj / attn_out
//   blk.N.ffn_norm / ffn_gate / ffn_up / ffn_down   ...ff_norm / ff_proj / up_proj / ff_out
//   output_norm.weight [d]              model.transformer.ln_f.weight
//   output.weight [vocab, d]            model.transformer.ff_out.weight (absent when tied)
//
// RoPE: the checkpoints rotate the two halves of each head ("rotate-half"); llama.cpp rotates
// adjacent pairs, so its converter reorders the rows of q_proj and k_proj within each head:
// GGUF row 2i+s of a head holds checkpoint row s*hd/2 + i (s = 0, 1; i < hd/2). k_proj uses
// the kv heads. Reading a GGUF file undoes that, so the engine sees checkpoint order.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "io/gguf.h"
#include "model/config.h"

namespace illada {

class TensorStore;

// GGUF name of a checkpoint tensor name and back; "" for a name outside the LLaDA layout.
std::string llada_gguf_name(std::string_view hf_name);
std::string llada_hf_name(std::string_view gguf_name);

// Whether the checkpoint tensor `hf_name` is a q_proj / k_proj weight (RoPE-permuted in GGUF).
bool llada_rope_permuted(std::string_view hf_name);

// Moves whole rows (of any format: `row_bytes` each) of a q_proj or k_proj weight with
// `n_heads` heads between checkpoint order and GGUF order (to_gguf) or back. in and out hold
// rows * row_bytes bytes and must not overlap.
void permute_rope_rows(std::span<const std::byte> in, std::span<std::byte> out, int64_t n_heads,
                       int64_t rows, uint64_t row_bytes, bool to_gguf);

// Writes the hyper-parameter keys above (and general.architecture unless already set) and
// the special ids of `c` (tokenizer.ggml.{bos,eos,padding,mask}_token_id, from config.json
// as llama.cpp's converter takes them). embedding_size rows
// are the vocabulary llama.cpp sees (llada.vocab_size); a smaller tokenizer vocab_size is
// kept in illada.vocab_size.
void set_llada_hparams(GgufWriter& w, const ModelConfig& c);

// The config a LLaDA GGUF file describes. Throws Error naming the file and the key or tensor
// on a missing key, a value of the wrong type, another architecture, causal attention,
// shifted logits, RoPE scaling, or hyper-parameters that contradict each other or the tensor
// shapes. The mask id comes from tokenizer.ggml.mask_token_id, else from the vocabulary's
// "<|mdm_mask|>" token (LLaDA's).
ModelConfig llada_config_from_gguf(const GgufFile& f);

// The file's tensors under their checkpoint names, q_proj / k_proj rows back in checkpoint
// order (those are copied; every other tensor is a view of the mapped file). F32, F16 and BF16
// tensors keep their dtype; block-quantised ones are exposed as blocks (TensorStore::blocks).
// Throws Error naming the tensor on a name outside the layout, a missing tensor, a shape that
// contradicts `c`, or an element type illada cannot use.
std::shared_ptr<const TensorStore> llada_tensor_store(std::shared_ptr<const GgufFile> f,
                                                      const ModelConfig& c);

}  // namespace illada
