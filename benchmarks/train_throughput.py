"""Training throughput (environment steps per second, one CPU thread) of gaussrl's PPO and SAC vs SB3 and skrl.

gaussrl and skrl each run twice: their torch agents ("gaussrl", "skrl") and their Warp agents on
Warp's CPU device ("gaussrl-warp", "skrl-warp"), when installed. The ratio column is gaussrl's
torch agents over each row, and the Warp rows' ratio gaussrl-warp / skrl-warp is printed below.

Measures the training loop only (no evaluation, checkpoints or logging) on the Gymnasium
Pendulum-v1 env, with the hyperparameters and network sizes ``gaussrl train`` uses there, and
Stable-Baselines3's and skrl's torch PPO/SAC configured alike (where installed). The
frameworks run one after another in the same process, ``--repeats`` times in rotating order;
the table gives medians and the ratios gaussrl / other, and is written as Markdown.

    python benchmarks/train_throughput.py [--ppo-steps 8192] [--sac-steps 1500] [--repeats 3]
        [--algos ppo sac] [--frameworks gaussrl gaussrl-jax sb3 skrl]
        [--markdown benchmarks/results/train_throughput.md] [--json out.json] [--clock wall|cpu]

``--clock cpu`` reports environment steps per second of the process's CPU time
(``time.process_time``) instead of wall time: on a machine shared with other jobs it is the
steadier figure (the rates are then "steps per CPU-s").

``gaussrl-jax`` is ``gaussrl train --backend jax``'s agent in the same loop; it first runs
``--jax-warmup`` steps untimed (its compilation: one update and the act calls), then the timed
steps. Its last column is its ratio to the torch backend.

Differences that remain: SB3's PPO has no observation/value normalisation or KL-adaptive
learning rate (it has no such options without wrappers), and its SAC policy is
state-dependent-std like ours; skrl's SAC actor here uses skrl's GaussianMixin with tanh on
the mean (skrl 2.x has no squashed Gaussian), with the same widths.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import gymnasium
import torch

from gaussrl.agents.config import SACConfig
from gaussrl.envs import TorchVecEnv, make_vector_env
from gaussrl.trainer.backends import build_array_agent
from gaussrl.trainer.build import build_ppo, build_sac
from gaussrl.trainer.presets import train_defaults

PENDULUM = train_defaults("Pendulum-v1")
"""The hyperparameters ``gaussrl train`` uses on Pendulum-v1 (its preset included)."""
SAC = train_defaults("Pendulum-v1").sac
LEARNING_STARTS = 256
"""SAC: random steps before learning in this benchmark (all frameworks), so most steps learn."""
NUM_ENVS = {"ppo": PENDULUM.envs, "sac": 1}
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
"""``--clock``: wall time, or this process's CPU time (steadier on a shared machine; one thread, so the same work)."""
CLOCK = [time.perf_counter]
"""The clock every measurement reads (``--clock`` sets it)."""
JAX_WARMUP = {"ppo": 4096, "sac": LEARNING_STARTS + 64}
"""Untimed steps of the JAX agent before the timed ones: its compilation (one PPO update; SAC's first updates)."""


def _steps(env: TorchVecEnv, agent: Any, steps: int, observations: torch.Tensor) -> torch.Tensor:
    for _ in range(steps // env.num_envs):
        step = env.step(agent.act(observations))
        agent.observe(step)
        observations = step.observations
    return observations


def gaussrl_jax_steps_per_s(algo: str, steps: int) -> float:
    """gaussrl's JAX PPO or SAC (``--backend jax``) on Pendulum-v1, after an untimed warm-up; steps per second."""
    num_envs = NUM_ENVS[algo]
    env = TorchVecEnv(make_vector_env("Pendulum-v1", num_envs), seed=0)
    sac = SACConfig(learning_starts=LEARNING_STARTS, random_timesteps=LEARNING_STARTS)
    agent = build_array_agent(
        "jax", algo, env, agents=(PENDULUM.ppo, sac), seed=0, threads=1, total_timesteps=steps + JAX_WARMUP[algo]
    )
    observations = _steps(env, agent, JAX_WARMUP[algo], env.reset())
    start = CLOCK[0]()
    _steps(env, agent, steps, observations)
    elapsed = CLOCK[0]() - start
    env.close()
    return steps / elapsed


def gaussrl_steps_per_s(algo: str, steps: int, backend: str = "torch") -> float:
    """gaussrl's PPO or SAC on Pendulum-v1 (torch or Warp agents); environment steps per second."""
    num_envs = NUM_ENVS[algo]
    env = TorchVecEnv(make_vector_env("Pendulum-v1", num_envs), seed=0)
    spaces = (env.observation_space, env.action_space)
    sac_config = SACConfig(learning_starts=LEARNING_STARTS, random_timesteps=LEARNING_STARTS)
    agent: Any
    if backend == "warp":  # the Warp agents behind the trainer's torch-tensor boundary, as `gaussrl train` runs them
        from gaussrl.trainer.warp_backend import WarpAgent, build_warp_ppo, build_warp_sac

        if algo == "ppo":
            warp_agent: Any = build_warp_ppo(PENDULUM.ppo, *spaces, num_envs=num_envs, device="cpu")
        else:
            warp_agent = build_warp_sac(sac_config, *spaces, num_envs=num_envs, device="cpu")
        agent = WarpAgent(warp_agent)
    elif algo == "ppo":
        agent = build_ppo(PENDULUM.ppo, *spaces, num_envs=num_envs, policy="mlp", device="cpu")
    else:
        agent = build_sac(sac_config, *spaces, num_envs=num_envs, device="cpu")
    observations = env.reset()
    start = CLOCK[0]()
    for _ in range(steps // num_envs):
        step = env.step(agent.act(observations))
        agent.observe(step)
        observations = step.observations
    elapsed = CLOCK[0]() - start
    env.close()
    return steps / elapsed


def sb3_steps_per_s(algo: str, steps: int) -> float:
    """Stable-Baselines3's PPO or SAC on Pendulum-v1 (raises ImportError when not installed)."""
    import stable_baselines3 as sb3
    from stable_baselines3.common.env_util import make_vec_env

    env = make_vec_env("Pendulum-v1", n_envs=NUM_ENVS[algo], seed=0)
    common = {"device": "cpu", "seed": 0}
    if algo == "ppo":
        cfg = PENDULUM.ppo
        model = sb3.PPO(
            "MlpPolicy",
            env,
            n_steps=cfg.rollouts,
            batch_size=cfg.rollouts * NUM_ENVS[algo] // cfg.mini_batches,
            n_epochs=cfg.learning_epochs,
            gamma=cfg.discount_factor,
            gae_lambda=cfg.gae_lambda,
            learning_rate=cfg.learning_rate,
            max_grad_norm=cfg.grad_norm_clip,
            vf_coef=cfg.value_loss_scale,
            ent_coef=cfg.entropy_loss_scale,
            policy_kwargs={"net_arch": list(cfg.hidden_sizes)},
            **common,
        )
    else:
        model = sb3.SAC(
            "MlpPolicy",
            env,
            batch_size=SAC.batch_size,
            learning_starts=LEARNING_STARTS,
            learning_rate=SAC.actor_learning_rate,
            gamma=SAC.discount_factor,
            tau=SAC.polyak,
            policy_kwargs={"net_arch": list(SAC.hidden_sizes)},
            **common,
        )
    start = CLOCK[0]()
    model.learn(total_timesteps=steps)
    return steps / (CLOCK[0]() - start)


def _skrl_models(algo: str, env: Any) -> dict[str, Any]:
    """skrl models with gaussrl's widths: Gaussian policy and value (PPO) or twin Q critics (SAC)."""
    from skrl.models.torch import DeterministicMixin, GaussianMixin, Model
    from torch import nn

    hidden = PENDULUM.ppo.hidden_sizes if algo == "ppo" else SAC.hidden_sizes
    activation = nn.Tanh if algo == "ppo" else nn.ReLU

    def mlp(inputs: int, outputs: int) -> nn.Sequential:
        layers: list[nn.Module] = []
        for width in hidden:
            layers += [nn.Linear(inputs, width), activation()]
            inputs = width
        return nn.Sequential(*layers, nn.Linear(inputs, outputs))

    num_obs, num_act = env.observation_space.shape[0], env.action_space.shape[0]

    class Policy(GaussianMixin, Model):  # type: ignore[misc]
        def __init__(self) -> None:
            Model.__init__(self, observation_space=env.observation_space, action_space=env.action_space, device="cpu")
            GaussianMixin.__init__(self, clip_actions=False, clip_log_std=True, min_log_std=-20, max_log_std=2)
            self.net = mlp(num_obs, num_act)
            self.log_std_parameter = nn.Parameter(torch.zeros(num_act))

        def compute(self, inputs: dict[str, Any], role: str = "") -> tuple[torch.Tensor, dict[str, Any]]:
            mean = self.net(inputs["observations"])
            return (mean if algo == "ppo" else 2.0 * torch.tanh(mean)), {"log_std": self.log_std_parameter}

    class Critic(DeterministicMixin, Model):  # type: ignore[misc]
        def __init__(self) -> None:
            Model.__init__(self, observation_space=env.observation_space, action_space=env.action_space, device="cpu")
            DeterministicMixin.__init__(self)
            self.net = mlp(num_obs + (0 if algo == "ppo" else num_act), 1)

        def compute(self, inputs: dict[str, Any], role: str = "") -> tuple[torch.Tensor, dict[str, Any]]:
            x = inputs["observations"]
            return self.net(x if algo == "ppo" else torch.cat([x, inputs["taken_actions"]], dim=-1)), {}

    if algo == "ppo":
        return {"policy": Policy(), "value": Critic()}
    return {
        "policy": Policy(),
        **{name: Critic() for name in ("critic_1", "critic_2", "target_critic_1", "target_critic_2")},
    }


def _skrl_agent(algo: str, env: Any, models: dict[str, Any], framework: str = "torch") -> Any:
    """skrl's PPO (KL-adaptive rate, observation and value normalisation) or SAC, configured like gaussrl's.

    ``framework`` is skrl's "torch" or "warp"; both have the same classes under the same names.
    """
    RandomMemory = importlib.import_module(f"skrl.memories.{framework}").RandomMemory
    RunningStandardScaler = importlib.import_module(f"skrl.resources.preprocessors.{framework}").RunningStandardScaler
    KLAdaptiveLR = importlib.import_module(f"skrl.resources.schedulers.{framework}").KLAdaptiveLR

    quiet = {"write_interval": 0, "checkpoint_interval": 0}
    spaces = {"observation_space": env.observation_space, "action_space": env.action_space, "device": "cpu"}
    if algo == "ppo":
        ppo_module = importlib.import_module(f"skrl.agents.{framework}.ppo")
        PPO, PPO_CFG = ppo_module.PPO, ppo_module.PPO_CFG
        p = PENDULUM.ppo
        cfg = PPO_CFG(
            rollouts=p.rollouts,
            learning_epochs=p.learning_epochs,
            mini_batches=p.mini_batches,
            discount_factor=p.discount_factor,
            gae_lambda=p.gae_lambda,
            learning_rate=p.learning_rate,
            learning_rate_scheduler=KLAdaptiveLR,
            learning_rate_scheduler_kwargs={"kl_threshold": p.kl_adaptive_threshold},
            observation_preprocessor=RunningStandardScaler,
            observation_preprocessor_kwargs={"size": env.observation_space, "device": "cpu"},
            value_preprocessor=RunningStandardScaler,
            value_preprocessor_kwargs={"size": 1, "device": "cpu"},
            grad_norm_clip=p.grad_norm_clip,
            value_loss_scale=p.value_loss_scale,
            time_limit_bootstrap=p.time_limit_bootstrap,
        )
        cfg.experiment.write_interval, cfg.experiment.checkpoint_interval = quiet.values()
        memory = RandomMemory(memory_size=p.rollouts, num_envs=env.num_envs, device="cpu")
        return PPO(models=models, memory=memory, cfg=cfg, **spaces)
    sac_module = importlib.import_module(f"skrl.agents.{framework}.sac")
    SkrlSAC, SAC_CFG = sac_module.SAC, sac_module.SAC_CFG

    cfg = SAC_CFG(
        batch_size=SAC.batch_size,
        discount_factor=SAC.discount_factor,
        polyak=SAC.polyak,
        learning_rate=SAC.actor_learning_rate,
        random_timesteps=LEARNING_STARTS,
        learning_starts=LEARNING_STARTS,
        initial_entropy_value=SAC.initial_entropy_value,
    )
    cfg.experiment.write_interval, cfg.experiment.checkpoint_interval = quiet.values()
    memory = RandomMemory(memory_size=SAC.memory_size, num_envs=env.num_envs, device="cpu")
    return SkrlSAC(models=models, memory=memory, cfg=cfg, **spaces)


def skrl_steps_per_s(algo: str, steps: int, framework: str = "torch") -> float:
    """skrl's torch (or Warp) PPO or SAC with its SequentialTrainer (raises ImportError when not installed)."""
    wrap_env = importlib.import_module(f"skrl.envs.wrappers.{framework}").wrap_env
    SequentialTrainer = importlib.import_module(f"skrl.trainers.{framework}").SequentialTrainer

    num_envs = NUM_ENVS[algo]
    env = wrap_env(gymnasium.make_vec("Pendulum-v1", num_envs=num_envs, vectorization_mode="sync"))
    if framework == "warp":
        try:
            from benchmarks.skrl_warp import skrl_warp_models
        except ModuleNotFoundError:  # run as a script: benchmarks/ itself is on sys.path
            from skrl_warp import skrl_warp_models  # type: ignore[no-redef]

        models = skrl_warp_models(algo, env, PENDULUM.ppo.hidden_sizes if algo == "ppo" else SAC.hidden_sizes)
    else:
        models = _skrl_models(algo, env)
    agent = _skrl_agent(algo, env, models, framework)
    cfg = {"timesteps": steps // num_envs, "headless": True, "disable_progressbar": True}
    trainer = SequentialTrainer(env=env, agents=agent, cfg=cfg)
    start = CLOCK[0]()
    trainer.train()
    return steps / (CLOCK[0]() - start)


def gaussrl_warp_steps_per_s(algo: str, steps: int) -> float:
    """gaussrl's Warp PPO or SAC on the CPU device (raises ImportError when warp-nn is not installed)."""
    import warp_nn  # noqa: F401

    return gaussrl_steps_per_s(algo, steps, backend="warp")


def skrl_warp_steps_per_s(algo: str, steps: int) -> float:
    """skrl's Warp PPO or SAC on Warp's CPU device (raises ImportError when skrl or warp-nn is not installed)."""
    return skrl_steps_per_s(algo, steps, framework="warp")


FRAMEWORKS: dict[str, Callable[[str, int], float]] = {
    "gaussrl": gaussrl_steps_per_s,
    "gaussrl-warp": gaussrl_warp_steps_per_s,
    "gaussrl-jax": gaussrl_jax_steps_per_s,
    "sb3": sb3_steps_per_s,
    "skrl": skrl_steps_per_s,
    "skrl-warp": skrl_warp_steps_per_s,
}


def measure(algo: str, steps: int, repeats: int, names: list[str]) -> dict[str, list[float]]:
    """Steps/s of every installed framework of ``names``, ``repeats`` times each, in rotating order."""
    results: dict[str, list[float]] = {}
    for repeat in range(repeats):
        for name in names[repeat % len(names) :] + names[: repeat % len(names)]:
            if name in results or repeat == 0:
                try:
                    value = FRAMEWORKS[name](algo, steps)
                except ImportError:
                    continue
                results.setdefault(name, []).append(value)
                print(f"{algo} {name}: {value:.1f} steps/s", flush=True)
    return results


def table(results: dict[str, dict[str, list[float]]], command: str) -> str:
    """The Markdown report: medians, every repeat, and gaussrl's ratio to each framework."""
    lines = [
        f"# Training throughput: env steps per {'CPU-s' if CLOCK[0] is time.process_time else 's'}, one CPU thread, "
        "Pendulum-v1 (median of repeats)",
        "",
        f"`{command}`",
        "",
        "| algo | framework | median steps/s | repeats | gaussrl / framework |",
        "|---|---|---|---|---|",
    ]
    for algo, runs in results.items():
        ours = statistics.median(runs["gaussrl"]) if "gaussrl" in runs else None  # not measured: no ratio column
        for name, values in runs.items():
            median = statistics.median(values)
            ratio = "-" if name == "gaussrl" or ours is None else f"{ours / median:.2f}x"
            if name == "gaussrl-jax" and ours is not None:
                ratio = f"jax / torch: {median / ours:.2f}x"
            repeats = ", ".join(f"{v:.0f}" for v in values)
            lines.append(f"| {algo.upper()} | {name} | {median:.0f} | {repeats} | {ratio} |")
    for algo, runs in results.items():
        if "gaussrl-warp" in runs and "skrl-warp" in runs:
            warp_ratio = statistics.median(runs["gaussrl-warp"]) / statistics.median(runs["skrl-warp"])
            lines.append(f"\n{algo.upper()} on Warp (CPU device): gaussrl-warp / skrl-warp = {warp_ratio:.2f}x")
    return "\n".join(lines) + "\n"


def main() -> None:
    """Measure, print and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ppo-steps", type=int, default=8192)
    parser.add_argument("--sac-steps", type=int, default=1500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--markdown", default="benchmarks/results/train_throughput.md")
    parser.add_argument("--json", default=None, help="also write the raw results to this file")
    parser.add_argument("--algos", nargs="+", default=["ppo", "sac"], choices=["ppo", "sac"])
    parser.add_argument("--frameworks", nargs="+", default=list(FRAMEWORKS), choices=list(FRAMEWORKS))
    parser.add_argument("--clock", default="wall", choices=list(CLOCKS), help="wall time or the process's CPU time")
    args = parser.parse_args()
    CLOCK[0] = CLOCKS[args.clock]
    torch.set_num_threads(1)
    steps = {"ppo": args.ppo_steps, "sac": args.sac_steps}
    results = {algo: measure(algo, steps[algo], args.repeats, args.frameworks) for algo in args.algos}
    command = (
        f"python benchmarks/train_throughput.py --algos {' '.join(args.algos)} "
        f"--frameworks {' '.join(args.frameworks)} --ppo-steps {args.ppo_steps} --sac-steps {args.sac_steps} "
        f"--repeats {args.repeats}" + (f" --clock {args.clock}" if args.clock != "wall" else "")
    )
    report = table(results, command)
    print(report)
    Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
    Path(args.markdown).write_text(report, encoding="utf-8")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
