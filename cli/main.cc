// Entry point of the `illada` program: parses the subcommand and turns errors into messages.
#include <cstdio>
#include <exception>
#include <new>

#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/openmp_env.h"
#include "dist/communicator.h"
#include "util/check.h"

int main(int argc, char** argv) {
  illada::cli::ensure_openmp_defaults(argv);  // may re-execute the program once
  CLI::App app{"illada: masked-diffusion language models (LLaDA / iLLaDA) in native C++"};
  app.require_subcommand(1);
  // Flag errors read like every other error: the program's name, the flag, what is wrong.
  app.failure_message([](const CLI::App* a, const CLI::Error& e) {
    std::string msg = std::string("illada: error: ") + e.what() + "\n";
    if (a->get_help_ptr() != nullptr) msg += "Run with --help for more information.\n";
    return msg;
  });
  // Features of this build: scripts and tests check for "mpi" before launching with mpirun.
  app.set_version_flag("--version", std::string("illada 0.1.0 (cpu") +
                                        (illada::dist::built_with_mpi() ? ", mpi data parallel" : "") + ")");
  illada::cli::register_info(app);
  illada::cli::register_logits(app);
  illada::cli::register_tokenize(app);
  illada::cli::register_init(app);
  illada::cli::register_generate(app);
  illada::cli::register_evaluate(app);
  illada::cli::register_train(app);
  illada::cli::register_demo(app);
  illada::cli::register_quantize(app);
  illada::cli::register_serve(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const illada::Error& e) {
    // Library errors name options (`block_length`); here they read as this command's flags.
    std::fprintf(stderr, "illada: error: %s\n", illada::cli::with_flag_names(app, e.what()).c_str());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "illada: error: out of memory (the model or the request is too large for this machine)\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "illada: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
