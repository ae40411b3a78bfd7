"""Training throughput (environment steps per second, one CPU thread) of gaussrl's PPO and SAC.

Measures the training loop only (no evaluation, checkpoints or TensorBoard), with the default
hyperparameters on Pendulum-v1, and, when stable-baselines3 is installed, SB3's PPO/SAC with
matching settings on the same task for comparison.

    python benchmarks/train_throughput.py [--ppo-steps 20480] [--sac-steps 3000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from gaussrl.agents.config import SACConfig
from gaussrl.envs import TorchVecEnv, make_vector_env
from gaussrl.trainer.build import build_ppo, build_sac
from gaussrl.trainer.presets import train_defaults

PENDULUM = train_defaults("Pendulum-v1")
"""The hyperparameters ``gaussrl train`` uses on Pendulum-v1 (its preset included)."""


def gaussrl_steps_per_s(algo: str, steps: int, num_envs: int) -> float:
    env = TorchVecEnv(make_vector_env("Pendulum-v1", num_envs), seed=0)
    if algo == "ppo":
        agent = build_ppo(
            PENDULUM.ppo, env.observation_space, env.action_space, num_envs=num_envs, policy="mlp", device="cpu"
        )
    else:
        config = SACConfig(learning_starts=256, random_timesteps=256)
        agent = build_sac(config, env.observation_space, env.action_space, num_envs=num_envs, device="cpu")
    observations = env.reset()
    start = time.perf_counter()
    for _ in range(steps // num_envs):
        step = env.step(agent.act(observations))
        agent.observe(step)
        observations = step.observations
    elapsed = time.perf_counter() - start
    env.close()
    return steps / elapsed


def sb3_steps_per_s(algo: str, steps: int, num_envs: int) -> float | None:
    try:
        import stable_baselines3 as sb3
        from stable_baselines3.common.env_util import make_vec_env
    except ImportError:
        return None
    env = make_vec_env("Pendulum-v1", n_envs=num_envs, seed=0)
    if algo == "ppo":
        cfg = PENDULUM.ppo
        model = sb3.PPO(
            "MlpPolicy",
            env,
            n_steps=cfg.rollouts,
            batch_size=cfg.rollouts * num_envs // cfg.mini_batches,
            n_epochs=cfg.learning_epochs,
            gamma=cfg.discount_factor,
            learning_rate=cfg.learning_rate,
            policy_kwargs={"net_arch": list(cfg.hidden_sizes)},
            device="cpu",
            seed=0,
        )
    else:
        cfg = SACConfig()
        model = sb3.SAC(
            "MlpPolicy",
            env,
            batch_size=cfg.batch_size,
            learning_starts=256,
            learning_rate=cfg.actor_learning_rate,
            policy_kwargs={"net_arch": list(cfg.hidden_sizes)},
            device="cpu",
            seed=0,
        )
    start = time.perf_counter()
    model.learn(total_timesteps=steps)
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ppo-steps", type=int, default=5 * 4096)
    parser.add_argument("--sac-steps", type=int, default=3000)
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = {}
    for algo, steps, num_envs in (("ppo", args.ppo_steps, 4), ("sac", args.sac_steps, 1)):
        ours = gaussrl_steps_per_s(algo, steps, num_envs)
        theirs = sb3_steps_per_s(algo, steps, num_envs)
        results[algo] = {"gaussrl_steps_per_s": round(ours, 1), "sb3_steps_per_s": theirs and round(theirs, 1)}
        ratio = f"  ({ours / theirs:.2f}x SB3's {theirs:.0f})" if theirs else "  (stable-baselines3 not installed)"
        print(f"{algo.upper()}: {ours:.0f} env steps/s over {steps} steps{ratio}", flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
