"""Raw env steps/s of a MuJoCo task: EnvPool against Gymnasium's SyncVectorEnv and gaussrl's TorchVecEnv.

    python -m benchmarks.envpool_rate [--env HalfCheetah-v5] [--num-envs 1 4 8] [--steps 20000] [--rounds 5]

Random actions (drawn beforehand), episodes reset as each engine does, one thread everywhere
(EnvPool ``num_threads=1``; ``OMP_NUM_THREADS=1``). Interleaved rounds; the medians of wall time and
of this process's CPU time (all threads: EnvPool steps in its own C++ threads) per env step.
Needs ``pip install envpool`` (not one of gaussrl's extras).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import gymnasium
import numpy as np
import torch

from gaussrl.envs.gymnasium import TorchVecEnv, make_vector_env


def _timed(step: Callable[[Any], object], actions: Any) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    for batch in actions:
        step(batch)
    return time.perf_counter() - wall, time.process_time() - cpu


def envpool_run(env_id: str, num_envs: int, actions: np.ndarray) -> tuple[float, float]:
    import envpool

    env = envpool.make(env_id, env_type="gymnasium", num_envs=num_envs, num_threads=1, seed=0)
    env.reset()
    result = _timed(env.step, actions.astype(np.float64))
    env.close()
    return result


def gymnasium_run(env_id: str, num_envs: int, actions: np.ndarray) -> tuple[float, float]:
    env = gymnasium.vector.SyncVectorEnv([lambda: gymnasium.make(env_id) for _ in range(num_envs)])
    env.reset(seed=0)
    result = _timed(env.step, actions)
    env.close()
    return result


def gaussrl_run(env_id: str, num_envs: int, actions: np.ndarray) -> tuple[float, float]:
    env = TorchVecEnv(make_vector_env(env_id, num_envs), seed=0)
    env.reset()
    result = _timed(env.step, torch.from_numpy(actions))
    env.close()
    return result


ENGINES = {"envpool": envpool_run, "gymnasium SyncVectorEnv": gymnasium_run, "gaussrl TorchVecEnv": gaussrl_run}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="HalfCheetah-v5")
    parser.add_argument("--num-envs", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    action_size = int(np.prod(gymnasium.make(args.env).action_space.shape or (1,)))
    print(
        "| num_envs | engine | env steps/s (wall) | env steps per CPU-second | rounds (wall) |\n|---|---|---|---|---|"
    )
    for num_envs in args.num_envs:
        rng = np.random.default_rng(0)
        actions = rng.uniform(-1.0, 1.0, (args.steps // num_envs, num_envs, action_size)).astype(np.float32)
        steps = actions.shape[0] * num_envs
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in ENGINES}
        for index in range(args.rounds):
            names = list(ENGINES)[index % len(ENGINES) :] + list(ENGINES)[: index % len(ENGINES)]
            for name in names:
                times[name].append(ENGINES[name](args.env, num_envs, actions))
        for name, values in times.items():
            wall = statistics.median(steps / w for w, _ in values)
            cpu = statistics.median(steps / c for _, c in values)
            rounds = ", ".join(f"{steps / w:.0f}" for w, _ in values)
            print(f"| {num_envs} | {name} | {wall:.0f} | {cpu:.0f} | {rounds} |", flush=True)


if __name__ == "__main__":
    main()
