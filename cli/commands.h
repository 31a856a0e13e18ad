// The subcommands of the `illada` program: each cli/<name>.cc adds one to the app.
#pragma once

#include <CLI/CLI.hpp>

namespace illada::cli {

// Each register function adds a subcommand whose callback does the work; errors are thrown
// as illada::Error and reported by main().
void register_info(CLI::App& app);
void register_logits(CLI::App& app);
void register_init(CLI::App& app);
void register_generate(CLI::App& app);  // generate, chat
void register_evaluate(CLI::App& app);  // score, eval
void register_tokenize(CLI::App& app);  // tokenize, detokenize, tokenizer train
void register_train(CLI::App& app);     // data prepare, train
void register_demo(CLI::App& app);      // demo
void register_quantize(CLI::App& app);  // quantize
void register_serve(CLI::App& app);     // serve

}  // namespace illada::cli
