// Entry point of the `illada` program: parses the subcommand and turns errors into messages.
#include <cstdio>
#include <exception>

#include "cli/commands.h"
#include "util/check.h"

int main(int argc, char** argv) {
  CLI::App app{"illada: masked-diffusion language models (LLaDA / iLLaDA) in native C++"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "illada 0.1.0");
  illada::cli::register_info(app);
  illada::cli::register_logits(app);
  illada::cli::register_tokenize(app);
  illada::cli::register_init(app);
  illada::cli::register_generate(app);
  illada::cli::register_evaluate(app);
  illada::cli::register_train(app);
  illada::cli::register_demo(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const illada::Error& e) {
    std::fprintf(stderr, "illada: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "illada: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
