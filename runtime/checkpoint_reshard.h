// Per-rank checkpoints of an expert-parallel layer (tutel-semantics 10): each rank's safetensors
// file holds the shared tensors (the gate) whole and its slice of every "experts.*" tensor along
// the expert axis, plus "_num_global_experts". Resharding turns files saved at one world size
// into files for another (Tutel's tutel.checkpoint gather then scatter).
#pragma once

#include <string>

namespace switchyard {

/// `pattern` with {rank} and {size} replaced (Tutel's checkpoint path convention).
std::string checkpoint_path(std::string pattern, int rank, int size);

/// Reads the `from_ranks` files of in_pattern, checks them (same tensor names, dtypes and shapes
/// across ranks, expert counts adding up to _num_global_experts), and writes `to_ranks` files of
/// out_pattern. Either world size may hold whole experts per rank or share each expert among s
/// ranks (hidden slices; the fc2 bias padded to s * ceil(M / s)). Nothing is written when a check fails
/// (UserError naming the file and the problem); each output is written atomically.
void reshard_checkpoint(const std::string& in_pattern, const std::string& out_pattern, int from_ranks, int to_ranks);

}  // namespace switchyard
