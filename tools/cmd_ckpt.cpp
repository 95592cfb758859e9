// switchyard ckpt convert: reshard per-rank checkpoints to another world size.
#include <iostream>

#include "runtime/checkpoint_reshard.h"
#include "tools/commands.h"

namespace switchyard::tools {

void add_ckpt_command(CLI::App& app) {
  auto* ckpt = app.add_subcommand("ckpt", "Per-rank MoE checkpoints");
  ckpt->require_subcommand(1);
  auto* convert = ckpt->add_subcommand("convert", "Reshard checkpoints saved at one world size for another");
  struct Options {
    std::string in, out;
    int from = 1, to = 1;
  };
  auto options = std::make_shared<Options>();
  convert->add_option("in", options->in, "Input pattern, {rank} and {size} replaced")->required();
  convert->add_option("out", options->out, "Output pattern, {rank} and {size} replaced")->required();
  convert->add_option("--from-ranks", options->from, "World size the input was saved at")->required();
  convert->add_option("--to-ranks", options->to, "World size to write for")->required();
  convert->callback([options] {
    reshard_checkpoint(options->in, options->out, options->from, options->to);
    std::cout << "wrote " << options->to << " file(s): " << checkpoint_path(options->out, 0, options->to)
              << (options->to > 1 ? " ..." : "") << "\n";
  });
}

}  // namespace switchyard::tools
