"""Cold compile CPU seconds and compiled throughput of the gymnax Pendulum chunk under the ``XLA_FLAGS`` set.

Builds the run as ``gaussrl train --backend jax --env gymnax/Pendulum-v1`` does (preset, no
compilation cache), then prints one Markdown row: the flags, the CPU seconds of the compiled
initialisation, of the first chunk (trace, lower, compile, one run with the evaluation), the
env steps per CPU second of the other chunks, and the final gymnax evaluation. One option per
process, since XLA reads ``XLA_FLAGS`` once:

    for f in "" --xla_llvm_disable_expensive_passes=true; do
      XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1 $f" \\
        GAUSSRL_JAX_CACHE_DIR= OMP_NUM_THREADS=1 taskset -c 1 python benchmarks/compiled_xla_flags.py
    done
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from gaussrl.agents.jax import ppo_compiled
from gaussrl.trainer import cli, compiled

ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def cpu_seconds(call: Callable[[], Any]) -> tuple[Any, float]:
    start = time.process_time()
    result = call()
    return result, time.process_time() - start


def main() -> None:
    config = cli.parse(["train", "--backend", "jax", "--env", "gymnax/Pendulum-v1"])
    (models, env, carry), init_s = cpu_seconds(lambda: compiled.build_run(config))
    per_update = config.ppo.rollouts * config.envs
    total = -(-config.timesteps // per_update)
    updates = compiled.chunk_updates(total, per_update, config)
    mesh = jax.sharding.Mesh(np.array(jax.local_devices()), (ppo_compiled.AXIS,))
    chunk = ppo_compiled.make_chunk(
        models,
        config.ppo,
        env,
        mesh,
        updates=updates,
        total_updates=total,
        example=carry,
        eval_episodes=config.eval_episodes,
        eval_seed=config.seed + compiled.EVAL_SEED_OFFSET,
    )
    (carry, _, returns), first_s = cpu_seconds(lambda: jax.block_until_ready(chunk(carry, True)))
    chunks = total // updates - 1
    seconds = []
    for i in range(chunks):
        step = functools.partial(chunk, carry, i == chunks - 1)
        (carry, _, returns), s = cpu_seconds(lambda step=step: jax.block_until_ready(step()))
        seconds.append(s)
    rate = updates * per_update * (chunks - 1) / sum(seconds[:-1])  # the last chunk also evaluates
    flags = os.environ.get("XLA_FLAGS", "").replace(ONE_THREAD, "").strip()
    print(f"| `{flags}` | {init_s:.2f} | {first_s:.2f} | {rate:,.0f} | {np.mean(returns):.1f} |", flush=True)


if __name__ == "__main__":
    main()
