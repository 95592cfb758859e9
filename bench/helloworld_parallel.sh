#!/usr/bin/env bash
# helloworld step time (training) for each adaptive_r and overlap degree on 2 and 4 CPU ranks,
# one JSON object per line. Usage: bench/helloworld_parallel.sh [BUILD_DIR] (default build/).
set -euo pipefail
build="${1:-build}"
flags=(--device cpu --batch_size 4 --num_tokens 256 --model_dim 256 --hidden_size 512 --num_local_experts 2 --num_steps 12)
for ranks in 2 4; do
  for type in data model; do
    for d in 1 2 4; do
      summary=$(mpirun --oversubscribe --allow-run-as-root -np "$ranks" "$build/examples/helloworld" "${flags[@]}" \
        --parallel_type "$type" --a2a_ffn_overlap_degree "$d" | grep '\[Summary\]')
      seconds=$(sed -E 's/.*step_time = ([0-9.e-]+) sec.*/\1/' <<<"$summary")
      r=$([[ $type == data ]] && echo 0 || echo 1)
      echo "{\"ranks\": $ranks, \"r\": $r, \"d\": $d, \"step_seconds\": $seconds}"
    done
  done
done
