"""Env steps/s of gaussrl's PPO and SAC against Stable-Baselines3's, on a MuJoCo env with the same settings.

    python -m benchmarks.mujoco_rate [--env HalfCheetah-v5] [--algos ppo sac] [--ppo-steps 20000]
        [--sac-steps 3000] [--rounds 3] [--markdown benchmarks/results/mujoco/rate.md]

gaussrl's settings are those ``gaussrl train --algo ALGO --env ENV`` runs with (the dataclass
defaults with the env family's preset, ``gaussrl.trainer.presets``); each is mapped explicitly to
SB3's PPO/SAC arguments and to a ``VecNormalize`` wrapper for observation and reward normalisation
(``sb3_ppo``/``sb3_sac``); what SB3 cannot express is listed in the output. Both run in this
process on one torch thread (``OMP_NUM_THREADS=1``), in interleaved rounds (the order alternates),
and the table gives the median of the rounds.

PPO: the rate over ``--ppo-steps`` steps from the start of training. SAC: the rate over the
``--sac-steps`` steps after ``learning_starts`` (the random steps before it are run, not timed).
gaussrl runs through its ``Trainer`` (metrics included; TensorBoard, periodic evaluation and
checkpoints off, the final evaluation after the timed part); SB3 through ``model.learn``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import dataclasses
import shlex
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from benchmarks.profile_training import CLOCK_NAMES, CLOCKS, Profile
from gaussrl.core.running import NORMALIZED_CLIP
from gaussrl.trainer.cli import parse
from gaussrl.trainer.loop import TrainConfig, Trainer

REWARD_CLIP = 10.0
"""gaussrl's reward normalisation clips at +-10, as VecNormalize's default."""


@dataclasses.dataclass(frozen=True)
class Mapping:
    """SB3 arguments for gaussrl's settings: the algorithm's keyword arguments, VecNormalize's, the vector env class.

    ``unmatched`` lists the settings SB3 cannot express, each with what SB3 does instead.
    """

    kwargs: dict[str, Any]
    normalize: dict[str, Any] | None
    subprocess_envs: bool
    num_envs: int
    unmatched: list[str]


def _activation(name: str) -> type[torch.nn.Module]:
    return {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}[name]


def _ppo_learning_rate(cfg: Any, unmatched: list[str]) -> float | Callable[[float], float]:
    if cfg.learning_rate_scheduler == "linear":
        rate = float(cfg.learning_rate)
        return lambda progress_remaining: rate * progress_remaining  # SB3 passes 1 -> 0 over the run
    if cfg.learning_rate_scheduler == "kl_adaptive":
        unmatched.append(
            f"learning_rate_scheduler='kl_adaptive' (target KL {cfg.kl_adaptive_threshold}): SB3 has no KL-adaptive "
            f"rate; it runs the initial rate {cfg.learning_rate} throughout"
        )
    return float(cfg.learning_rate)


def _normalize(observations: bool, rewards: bool, gamma: float) -> dict[str, Any] | None:
    if not observations and not rewards:
        return None
    return {
        "norm_obs": observations,
        "norm_reward": rewards,
        "clip_obs": NORMALIZED_CLIP,
        "clip_reward": REWARD_CLIP,
        "gamma": gamma,
    }


def sb3_ppo(train: TrainConfig) -> Mapping:
    """SB3 PPO arguments for ``train.ppo`` (and the vector env of ``train``)."""
    cfg, unmatched = train.ppo, list[str]()
    activation = getattr(cfg, "activation", "tanh")  # the torch PPO networks are tanh where the field is absent
    kwargs = {
        "n_steps": cfg.rollouts,
        "batch_size": cfg.rollouts * train.envs // cfg.mini_batches,
        "n_epochs": cfg.learning_epochs,
        "gamma": cfg.discount_factor,
        "gae_lambda": cfg.gae_lambda,
        "clip_range": cfg.ratio_clip,
        "clip_range_vf": cfg.value_clip if cfg.clip_predicted_values else None,
        "ent_coef": cfg.entropy_loss_scale,
        "vf_coef": cfg.value_loss_scale,
        "max_grad_norm": cfg.grad_norm_clip if cfg.grad_norm_clip > 0 else float("inf"),
        "learning_rate": _ppo_learning_rate(cfg, unmatched),
        "target_kl": cfg.kl_threshold if cfg.kl_threshold > 0 else None,
        "policy_kwargs": {
            "net_arch": {"pi": list(cfg.hidden_sizes), "vf": list(cfg.hidden_sizes)},
            "activation_fn": _activation(activation),
            "log_std_init": cfg.initial_log_std,
            # orthogonal: gains sqrt(2) hidden, 0.01 policy, 1 value, as gaussrl's; otherwise torch's Linear default,
            # U(+-1/sqrt(fan_in)) for weights and biases, which is gaussrl's "uniform"
            "ortho_init": getattr(cfg, "initialization", "orthogonal") == "orthogonal",
        },
    }
    if cfg.kl_threshold > 0:
        unmatched.append(f"kl_threshold={cfg.kl_threshold}: SB3 stops epochs at 1.5 x target_kl of its approximate KL")
    if cfg.value_normalization:
        unmatched.append("value_normalization=True: SB3 learns unnormalised values")
    if not cfg.time_limit_bootstrap:
        unmatched.append("time_limit_bootstrap=False: SB3 always bootstraps on truncation")
    if cfg.reward_scale != 1.0:
        unmatched.append(f"reward_scale={cfg.reward_scale}: SB3 learns from the unscaled rewards")
    if train.policy != "mlp":
        unmatched.append(f"policy={train.policy!r}: SB3 runs an MLP")
    rewards = bool(getattr(cfg, "reward_normalization", False))
    normalize = _normalize(cfg.observation_normalization, rewards, cfg.discount_factor)
    return Mapping(kwargs, normalize, train.vectorization == "async", train.envs, unmatched)


def sb3_sac(train: TrainConfig) -> Mapping:
    """SB3 SAC arguments for ``train.sac`` (and the vector env of ``train``)."""
    cfg, unmatched = train.sac, list[str]()
    kwargs = {
        "buffer_size": cfg.memory_size * train.envs,  # gaussrl's capacity is per environment, SB3's in total
        "batch_size": cfg.batch_size,
        "tau": cfg.polyak,
        "gamma": cfg.discount_factor,
        "learning_rate": cfg.actor_learning_rate,
        "learning_starts": cfg.learning_starts,
        "train_freq": 1,
        "gradient_steps": cfg.gradient_steps,
        "ent_coef": f"auto_{cfg.initial_entropy_value}" if cfg.learn_entropy else cfg.initial_entropy_value,
        "target_entropy": "auto" if cfg.target_entropy is None else cfg.target_entropy,  # both: -num_actions
        "policy_kwargs": {"net_arch": list(cfg.hidden_sizes), "activation_fn": torch.nn.ReLU},
    }
    rates = {"critic_learning_rate": cfg.critic_learning_rate, "entropy_learning_rate": cfg.entropy_learning_rate}
    for name, value in rates.items():
        if value != cfg.actor_learning_rate:
            unmatched.append(f"{name}={value}: SB3 uses one rate, actor_learning_rate={cfg.actor_learning_rate}")
    if cfg.random_timesteps != cfg.learning_starts:
        unmatched.append(
            f"random_timesteps={cfg.random_timesteps}: SB3 acts at random until learning_starts={cfg.learning_starts}"
        )
    if cfg.grad_norm_clip > 0:
        unmatched.append(f"grad_norm_clip={cfg.grad_norm_clip}: SB3's SAC does not clip gradients")
    if cfg.reward_scale != 1.0:
        unmatched.append(f"reward_scale={cfg.reward_scale}: SB3 learns from the unscaled rewards")
    normalize = _normalize(cfg.observation_normalization, False, cfg.discount_factor)
    return Mapping(kwargs, normalize, train.vectorization == "async", train.envs, unmatched)


def sb3_model(algo: str, env_id: str, mapping: Mapping, seed: int = 0) -> Any:
    """The SB3 model for a mapping (raises ImportError when SB3 is not installed)."""
    import stable_baselines3 as sb3
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecNormalize

    vec_env_cls = SubprocVecEnv if mapping.subprocess_envs else DummyVecEnv
    env = make_vec_env(env_id, n_envs=mapping.num_envs, seed=seed, vec_env_cls=vec_env_cls)
    if mapping.normalize is not None:
        env = VecNormalize(env, **mapping.normalize)
    algorithm = sb3.PPO if algo == "ppo" else sb3.SAC
    return algorithm("MlpPolicy", env, device="cpu", seed=seed, verbose=0, **mapping.kwargs)


def sb3_rate(
    algo: str, env_id: str, mapping: Mapping, start: int, steps: int, *, clock: Callable[[], float] = time.perf_counter
) -> float:
    """SB3's env steps/s over ``steps`` steps after step ``start`` (its model built beforehand, untimed)."""
    model = sb3_model(algo, env_id, mapping)
    marks: list[float] = []

    def mark(_locals: dict[str, Any], _globals: dict[str, Any]) -> bool:
        if not marks and model.num_timesteps >= start:
            marks.append(clock())
        return True

    began = clock()
    model.learn(total_timesteps=start + steps, callback=mark if start > 0 else None)
    elapsed = clock() - (marks[0] if start > 0 else began)
    model.get_env().close()
    return float(model.num_timesteps - start) / elapsed


def gaussrl_config(algo: str, env_id: str, timesteps: int, out: str, extra: tuple[str, ...] = ()) -> TrainConfig:
    """``gaussrl train --algo A --env E`` with its preset, timed part only: no TensorBoard, periodic evaluation or
    checkpoint, one evaluation episode at the end."""
    argv = ["train", "--algo", algo, "--env", env_id, "--timesteps", str(timesteps), "--out", out]
    argv += ["--eval-interval", "0", "--checkpoint-interval", "0", "--eval-episodes", "1", "--threads", "1"]
    config = parse([*argv, "--no-tensorboard", "--no-progress", *extra])
    if not isinstance(config, TrainConfig):
        raise TypeError(f"expected a train command, got {config!r}")
    return config


def gaussrl_rate(
    algo: str,
    env_id: str,
    start: int,
    steps: int,
    *,
    extra: tuple[str, ...] = (),
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """gaussrl's env steps/s over ``steps`` steps after step ``start`` (Trainer built beforehand, untimed)."""
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(gaussrl_config(algo, env_id, start + steps, out, extra))
        profile = Profile(trainer, start_step=start, clock=clock)
        profile.run()
    return profile.window_steps / profile.window_s


def settings(algo: str, env_id: str, extra: tuple[str, ...] = ()) -> TrainConfig:
    """What ``gaussrl train --algo A --env E [EXTRA]`` runs with (the env's preset included)."""
    return gaussrl_config(algo, env_id, 1, "unused", extra)


def measure(
    algo: str, env_id: str, steps: int, rounds: int, *, extra: tuple[str, ...] = (), clock: str = "wall"
) -> dict[str, list[float]]:
    """Both frameworks' rates, ``rounds`` times, in alternating order."""
    train = settings(algo, env_id, extra)
    start = train.sac.learning_starts if algo == "sac" else 0
    mapping = sb3_ppo(train) if algo == "ppo" else sb3_sac(train)
    runners = {
        "gaussrl": lambda: gaussrl_rate(algo, env_id, start, steps, extra=extra, clock=CLOCKS[clock]),
        "sb3": lambda: sb3_rate(algo, env_id, mapping, start, steps, clock=CLOCKS[clock]),
    }
    rates: dict[str, list[float]] = {"gaussrl": [], "sb3": []}
    for index in range(rounds):
        for name in list(runners)[:: 1 if index % 2 == 0 else -1]:
            rates[name].append(runners[name]())
            print(f"{algo} {env_id} round {index} {name}: {rates[name][-1]:.1f} env steps/s", flush=True)
    return rates


def describe(mapping: Mapping) -> str:
    """The SB3 arguments as text (callables by name)."""

    def text(value: Any) -> str:
        if isinstance(value, type):
            return value.__name__
        if callable(value):
            return "linear decay to 0"
        if isinstance(value, dict):
            return "{" + ", ".join(f"{k}: {text(v)}" for k, v in value.items()) + "}"
        return repr(value)

    normalize = "none" if mapping.normalize is None else text(mapping.normalize)
    env = f"{'SubprocVecEnv' if mapping.subprocess_envs else 'DummyVecEnv'} x {mapping.num_envs}"
    return f"{text(mapping.kwargs)}; {env}; VecNormalize: {normalize}"


def report(
    env_id: str,
    results: dict[str, dict[str, list[float]]],
    steps: dict[str, int],
    command: str,
    *,
    extra: tuple[str, ...] = (),
    clock: str = "wall",
) -> str:
    """The Markdown table, the SB3 arguments used and the settings SB3 cannot match."""
    lines = [
        f"# Env steps per second of {CLOCK_NAMES[clock]} on {env_id}: gaussrl vs Stable-Baselines3, same settings, "
        "one CPU thread (median of rounds)",
        "",
        f"`{command}`",
        "",
        "| algo | timed steps | gaussrl | SB3 | gaussrl / SB3 | rounds (gaussrl; SB3) |",
        "|---|---|---|---|---|---|",
    ]
    for algo, rates in results.items():
        ours, theirs = statistics.median(rates["gaussrl"]), statistics.median(rates["sb3"])
        rounds = f"{', '.join(f'{v:.0f}' for v in rates['gaussrl'])}; {', '.join(f'{v:.0f}' for v in rates['sb3'])}"
        start = settings(algo, env_id, extra).sac.learning_starts if algo == "sac" else 0
        timed = f"{steps[algo]}" + (f" after {start}" if start else "")
        lines.append(f"| {algo.upper()} | {timed} | {ours:.0f} | {theirs:.0f} | {ours / theirs:.2f}x | {rounds} |")
    for algo in results:
        train = settings(algo, env_id, extra)
        mapping = sb3_ppo(train) if algo == "ppo" else sb3_sac(train)
        lines += ["", f"{algo.upper()}: SB3 arguments {describe(mapping)}.", ""]
        lines += [f"- not matched: {item}" for item in mapping.unmatched] or ["- every setting matched"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Measure, print and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="HalfCheetah-v5")
    parser.add_argument("--algos", nargs="+", default=["ppo", "sac"], choices=["ppo", "sac"])
    parser.add_argument("--ppo-steps", type=int, default=20_000)
    parser.add_argument("--sac-steps", type=int, default=3_000, help="timed steps after learning_starts")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clock", choices=list(CLOCKS), default="wall", help="cpu: the main thread's CPU time")
    parser.add_argument("--extra", default="", help='more gaussrl train options, e.g. "--sac.hidden-sizes 256 256"')
    parser.add_argument("--markdown", type=Path, default=Path("benchmarks/results/mujoco/rate.md"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    steps = {"ppo": args.ppo_steps, "sac": args.sac_steps}
    extra = tuple(shlex.split(args.extra))
    results = {
        algo: measure(algo, args.env, steps[algo], args.rounds, extra=extra, clock=args.clock) for algo in args.algos
    }
    command = (
        f"python -m benchmarks.mujoco_rate --env {args.env} --algos {' '.join(args.algos)}"
        + "".join(f" --{algo}-steps {steps[algo]}" for algo in args.algos)
        + f" --rounds {args.rounds} --clock {args.clock}"
        + (f" --extra {shlex.quote(args.extra)}" if args.extra else "")
    )
    text = report(args.env, results, steps, command, extra=extra, clock=args.clock)
    print(text)
    args.markdown.parent.mkdir(parents=True, exist_ok=True)
    args.markdown.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
