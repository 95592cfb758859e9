// switchyard: inspect the runtime, pre-warm and dump kernels, and manage the kernel cache.
#include <iostream>

#include "core/error.h"
#include "tools/commands.h"

namespace switchyard::tools {

int& exit_code() {
  static int code = 0;
  return code;
}

}  // namespace switchyard::tools

int main(int argc, char** argv) {
  CLI::App app{"switchyard: JIT kernel compiler and runtime for Mixture-of-Experts layers"};
  app.require_subcommand(1);
  app.set_version_flag("--version", SY_VERSION);
  switchyard::tools::add_info_command(app);
  switchyard::tools::add_warm_command(app);
  switchyard::tools::add_dump_command(app);
  switchyard::tools::add_cache_command(app);
  switchyard::tools::add_ckpt_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const switchyard::CompileError& e) {
    std::cerr << "switchyard: compile error: " << e.what() << "\n";
    return 1;
  } catch (const switchyard::Error& e) {
    std::cerr << "switchyard: error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "switchyard: internal error: " << e.what() << "\n";
    return 1;
  }
  return switchyard::tools::exit_code();
}
