// The subcommands of the `switchyard` command line; each registers its options on the app.
#pragma once

#include <CLI/CLI.hpp>

namespace switchyard::tools {

void add_info_command(CLI::App& app);
void add_warm_command(CLI::App& app);
void add_dump_command(CLI::App& app);
void add_cache_command(CLI::App& app);
void add_ckpt_command(CLI::App& app);

/// The exit code a subcommand asks for (0 unless it found a problem, e.g. cache verify).
int& exit_code();

}  // namespace switchyard::tools
