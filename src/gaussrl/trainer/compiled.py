"""Training compiled end to end: ``gaussrl train --backend jax --env gymnax/<id>``.

Needs JAX; imports no torch (checkpoints are written from NumPy, the Gymnasium evaluation steps
Gymnasium's environment directly), unless TensorBoard is asked for (torch's writer) or a run resumes.

The run is a sequence of chunks, each one compiled call of several PPO iterations (rollout over
all vmapped environments, GAE and update; :mod:`gaussrl.agents.jax.ppo_compiled`). Between
chunks the host updates the progress display (:class:`~gaussrl.trainer.progress.Progress`),
writes the metrics, evaluates and checkpoints, as :class:`gaussrl.trainer.loop.Trainer` does,
into the same run directory layout. Chunks end on every evaluation and checkpoint step, so a
resumed run replays exactly the chunks of the uninterrupted one and ends with the same parameters.
After each chunk, a recorded SIGINT/SIGTERM stops the run with a checkpoint, and NaN/inf in an
update's losses or in the agent's state stops it with ``DivergenceError`` (the messages and exit
statuses of the Gymnasium trainer, :mod:`gaussrl.trainer.stops`).

The final policy is evaluated on gymnax (compiled) and, where Gymnasium has the same id, on
Gymnasium's own environment (``summary.json``: ``eval_return_mean`` and
``gymnasium_eval_return_mean``). Checkpoints hold every array of the carry (parameters, Adam,
normalisers, environment states, keys) in safetensors, the rest in JSON.
"""

from __future__ import annotations

import json
import time
from typing import Any

import gymnasium
import jax
import numpy as np
from gymnasium import spaces

from gaussrl.agents.jax import ppo_compiled, ppo_core
from gaussrl.agents.jax.networks import GaussianMLPPolicy, ValueMLP, params_to_torch
from gaussrl.agents.jax.normalization import mean_std
from gaussrl.agents.policy_arrays import PolicyArrays
from gaussrl.core.errors import ConfigError
from gaussrl.envs import GYMNAX_PREFIX
from gaussrl.envs import gymnax as gymnax_envs
from gaussrl.envs.step import NonFiniteDataError
from gaussrl.io.atomic import write_text_atomic
from gaussrl.io.checkpoint import save_checkpoint
from gaussrl.trainer.compiled_state import (
    carry_from_tensors,
    carry_to_tensors,
    first_nonfinite_leaf,
    gymnasium_returns,
    policy_mean_actions,
    use_compilation_cache,
)
from gaussrl.trainer.config import TrainConfig, use_one_xla_thread
from gaussrl.trainer.metrics import MetricsLog, require_wandb
from gaussrl.trainer.progress import Progress
from gaussrl.trainer.resume import load_resume, run_meta
from gaussrl.trainer.rundir import CHECKPOINTS, prepare_run_dir
from gaussrl.trainer.stops import DivergenceError, Interrupted, SignalFlag, check_update, interrupted, stopped

EVAL_SEED_OFFSET = 1_000_003
"""Evaluation episodes start from states of their own stream (as the Gymnasium trainer's)."""
CHUNKS_PER_RUN = 10
"""Without evaluations or checkpoints in between, a run is still cut into about this many chunks."""


def check_config(config: TrainConfig) -> None:
    """Raise a ``ConfigError`` unless the run can train compiled (PPO, MLP policy, the jax backend)."""
    if config.backend != "jax":
        raise ConfigError(f"{config.env!r} is a gymnax environment: train it with --backend jax.")
    if config.algo != "ppo" or config.policy != "mlp":
        raise ConfigError(
            f"gymnax environments train PPO with an MLP policy (got --algo {config.algo} --policy {config.policy}); "
            f"use --algo ppo --policy mlp."
        )
    if config.nonfinite != "stop":
        raise ConfigError(
            f"--nonfinite {config.nonfinite} is not part of the compiled gymnax trainer ({config.env!r}), which has "
            f"no per-step host check to skip steps with; use --nonfinite stop (the default)."
        )
    if config.ppo.reward_normalization:
        raise ConfigError(
            f"--ppo.reward-normalization is not part of the compiled gymnax trainer ({config.env!r}); drop it "
            f"(gymnax's Pendulum rewards need no scaling), or train a Gymnasium id with --backend torch or jax."
        )


def chunk_updates(total_updates: int, per_update: int, config: TrainConfig) -> int:
    """PPO iterations per compiled chunk: a divisor of the run's updates, at most one evaluation interval.

    Args:
        total_updates: Updates of the run.
        per_update: Environment steps per update.
        config: The run (its evaluation and checkpoint intervals).

    Returns:
        The chunk length, in updates.
    """
    limit = max(1, total_updates // CHUNKS_PER_RUN)
    for interval in (config.eval_interval, config.checkpoint_interval):
        if interval > 0:
            limit = min(limit, max(1, interval // per_update))
    return max(d for d in range(1, limit + 1) if total_updates % d == 0)


def build_run(config: TrainConfig) -> tuple[ppo_core.PPOModels, gymnax_envs.VecEnv, ppo_compiled.Carry]:
    """The models, environments and initial carry of a compiled run.

    Args:
        config: The run.

    Returns:
        The policy and value models, the ``num_envs`` environments and the carry before training.
    """
    cfg = config.ppo
    env = gymnax_envs.make(config.env, config.envs)
    box = spaces.Box(-1.0, 1.0, (env.num_actions,), np.float32)
    policy = GaussianMLPPolicy(
        env.num_observations,
        box,
        hidden_sizes=cfg.hidden_sizes,
        activation=cfg.activation,
        initialization=cfg.initialization,
        initial_log_std=cfg.initial_log_std,
    )
    value = ValueMLP(
        env.num_observations,
        hidden_sizes=cfg.hidden_sizes,
        activation=cfg.activation,
        initialization=cfg.initialization,
    )
    models = ppo_core.PPOModels(policy, value)
    return models, env, ppo_compiled.init_run(models, cfg, env, config.seed, devices=jax.local_device_count())


def evaluate_compiled_run(config: TrainConfig, state: dict[str, Any], *, episodes: int) -> float:
    """The mean return of deterministic gymnax episodes of a compiled run's checkpoint (``gaussrl eval``).

    Args:
        config: The run's configuration (its ``config.json``).
        state: The checkpoint's state.
        episodes: Number of episodes.

    Returns:
        The mean return; the episodes start as the trainer's evaluations do.
    """
    use_compilation_cache()
    models, env, template = build_run(config)
    carry = carry_from_tensors(template, state["carry"])
    evaluate = ppo_compiled.make_evaluate(
        models,
        config.ppo,
        env,
        episodes=episodes,
        seed=config.seed + EVAL_SEED_OFFSET,
        devices=jax.local_device_count(),
    )
    return float(np.mean(np.asarray(evaluate(carry.ppo.params, carry.obs_stats), np.float64)))


def compiled_policy_arrays(config: TrainConfig, state: dict[str, Any]) -> tuple[PolicyArrays, spaces.Box]:
    """The policy of a compiled run's checkpoint under its torch twin's names, and the environment's actions.

    Args:
        config: The run's configuration (its ``config.json``).
        state: The checkpoint's state.

    Returns:
        The policy's arrays (``gaussrl export``) and the gymnax environment's action Box, which the
        policy's actions in [-1, 1] are clipped and rescaled onto, as :meth:`VecEnv.to_env_actions` does.
    """
    _, env, template = build_run(config)
    carry = carry_from_tensors(template, state["carry"])
    arrays = params_to_torch(carry.ppo.params["policy"])
    box = spaces.Box(env.low.astype(np.float32), env.high.astype(np.float32), dtype=np.float32)
    mean, std = mean_std(carry.obs_stats) if config.ppo.observation_normalization else (None, None)
    return PolicyArrays(arrays, mean, std), box


class CompiledTrainer:
    """One compiled training run on a gymnax environment; :meth:`run` trains and returns the summary.

    As :class:`gaussrl.trainer.loop.Trainer`, the run directory and a resume request are checked
    before anything is built, and the run stops early with a checkpoint on SIGINT/SIGTERM
    (:class:`~gaussrl.trainer.stops.Interrupted`) and on NaN/inf in a loss or in the agent's state
    (:class:`~gaussrl.trainer.stops.DivergenceError`, checkpointed only while the state is finite);
    both are looked at after every chunk.

    Args:
        config: The run (``env`` a ``gymnax/<id>``, ``backend="jax"``).

    Raises:
        ConfigError: For another backend or algorithm, or ``num_envs`` not divisible by the devices.
    """

    def __init__(self, config: TrainConfig) -> None:
        self.start = time.perf_counter()  # model building and compilation count towards the wall time
        check_config(config)
        self.config, self.dir, cfg = config, config.run_dir, config.ppo
        use_one_xla_thread(config.threads)  # the CLI calls it before importing JAX; here for the Python API
        use_compilation_cache()
        devices = jax.local_devices()
        if config.envs % len(devices):
            raise ConfigError(
                f"num_envs={config.envs} must be a multiple of the {len(devices)} local devices the environments "
                f"are sharded over; e.g. --num-envs {len(devices) * max(1, config.envs // len(devices))}."
            )
        resumed = load_resume(config) if config.resume is not None else None
        if config.wandb:
            require_wandb()
        gymnax_envs.make(config.env, config.envs)  # an unknown id or action space is refused before the directory
        prepare_run_dir(self.dir, resume=resumed is not None, force=config.force)
        self.models, env, self.carry = build_run(config)
        self.per_update = cfg.rollouts * config.envs
        self.total_updates = -(-config.timesteps // self.per_update)
        self.steps, self.recent = 0, []
        self.last_eval: np.ndarray | None = None
        self.last_eval_step: int | None = None
        self.resumed_step = self.last_checkpoint = resumed[2] if resumed is not None else None
        if resumed is not None:
            self.carry = carry_from_tensors(self.carry, resumed[0]["carry"])
            self.steps, self.recent = int(resumed[0]["steps"]), [float(r) for r in resumed[0]["recent_returns"]]
        local = gymnax_envs.VecEnv(**{**vars(env), "num_envs": config.envs // len(devices)})
        self.updates_per_chunk = chunk_updates(self.total_updates, self.per_update, config)
        self.chunk = ppo_compiled.make_chunk(
            self.models,
            cfg,
            local,
            jax.sharding.Mesh(np.array(devices), (ppo_compiled.AXIS,)),
            updates=self.updates_per_chunk,
            total_updates=self.total_updates,
            example=self.carry,
            eval_episodes=config.eval_episodes,
            eval_seed=config.seed + EVAL_SEED_OFFSET,
        )
        self.env = env
        self.chunk_times: list[tuple[float, float]] = []
        write_text_atomic(self.dir / "config.json", json.dumps(config.to_json(), indent=2, allow_nan=False))
        wandb = config.to_json() if config.wandb else None
        self.metrics = MetricsLog(self.dir, resume_step=self.resumed_step, tensorboard=config.tensorboard, wandb=wandb)

    def _log(self, logs: dict[str, Any], before: int) -> None:
        """Write one chunk's records; raise ``DivergenceError`` at the first update with a non-finite metric."""
        logs = {name: np.asarray(value) for name, value in logs.items()}
        for i in range(self.updates_per_chunk):
            step = before + (i + 1) * self.per_update
            count = int(logs["episodes"][i])
            if count:
                mean = float(logs["episode_return_sum"][i]) / count
                self.recent.append(mean)
                length = float(logs["episode_length_sum"][i]) / count
                self.metrics.add("episode", step, {"return": mean, "length": length, "episodes": float(count)})
            update = {k: float(logs[k][i]) for k in logs if not k.startswith("episode")}
            check_update(update, self.config.algo, step)
            self.metrics.add("update", step, update)

    def _check_finite(self) -> None:
        """Raise ``DivergenceError`` if the agent's state (parameters, Adam, normalisers) holds NaN or inf."""
        bad = first_nonfinite_leaf({"ppo": self.carry.ppo, "obs_stats": self.carry.obs_stats})
        if bad is not None:
            raise DivergenceError(f"the agent's {bad} holds NaN or infinity after {self.steps} steps")

    def evaluate(self) -> np.ndarray:
        """Run the deterministic gymnax evaluation alone (compiled apart from the chunk) and log it.

        Returns:
            The episode returns.
        """
        cfg = self.config
        evaluate = ppo_compiled.make_evaluate(
            self.models,
            cfg.ppo,
            self.env,
            episodes=cfg.eval_episodes,
            seed=cfg.seed + EVAL_SEED_OFFSET,
            devices=jax.local_device_count(),
        )
        return self._record_eval(evaluate(self.carry.ppo.params, self.carry.obs_stats))

    def _record_eval(self, returns: Any) -> np.ndarray:
        """Log an evaluation's returns (of the current step)."""
        values: np.ndarray = np.asarray(returns, np.float64)
        self.last_eval, self.last_eval_step = values, self.steps
        self.metrics.add("eval", self.steps, {"return_mean": float(values.mean()), "return_std": float(values.std())})
        self.metrics.flush()
        return values

    def evaluate_gymnasium(self) -> np.ndarray | None:
        """Deterministic episodes of the policy on Gymnasium's environment of the same id (None if it has none)."""
        name = self.config.env.removeprefix(GYMNAX_PREFIX)
        if name not in gymnasium.envs.registry:
            return None
        cfg, carry = self.config, self.carry
        act = policy_mean_actions(
            self.models, carry.ppo.params["policy"], carry.obs_stats, cfg.ppo.observation_normalization
        )
        return gymnasium_returns(name, act, cfg.eval_episodes, cfg.seed + EVAL_SEED_OFFSET)

    def checkpoint(self) -> None:
        """Write a checkpoint of the carry, the step count and the recent returns.

        Raises:
            DivergenceError: If the agent's state holds NaN or infinity (nothing is written).
        """
        self._check_finite()
        state = {"carry": carry_to_tensors(self.carry), "steps": self.steps, "recent_returns": self.recent[-100:]}
        config = self.config
        meta = {**run_meta(config), "backend": "jax", "steps": self.steps, "seed": config.seed}
        save_checkpoint(self.dir / CHECKPOINTS, self.steps, state, meta, keep=config.keep_checkpoints)
        self.last_checkpoint = self.steps

    def _due(self, interval: int, before: int, after: int | None = None) -> bool:
        """Whether a multiple of ``interval`` lies in ``(before, after]`` (``after``: the current step)."""
        after = self.steps if after is None else after
        return interval > 0 and after // interval > before // interval

    def _train_chunk(self) -> int:
        """Run one compiled chunk, log it and check it, and log its evaluation if due; the step count before it."""
        before, start, cpu = self.steps, time.perf_counter(), time.process_time()
        after = before + self.updates_per_chunk * self.per_update
        # Every evaluation step, and the run's last step, ends a chunk that evaluates its final parameters.
        evaluate = after >= self.total_updates * self.per_update or self._due(self.config.eval_interval, before, after)
        self.carry, logs, returns = self.chunk(self.carry, evaluate)
        logs = jax.device_get(logs)  # waits for the chunk
        self.chunk_times.append((time.perf_counter() - start, time.process_time() - cpu))
        self.steps = after
        self._log(logs, before)
        self._check_finite()
        if evaluate:
            self._record_eval(returns)
        return before

    def _postfix(self, progress: Progress) -> None:
        postfix = {"return": f"{np.mean(self.recent[-20:]):.1f}" if self.recent else "-"}
        if self.last_eval is not None:
            postfix["eval"] = f"{self.last_eval.mean():.1f}"
        progress.set_postfix(postfix)

    def _loop(self, progress: Progress, signals: SignalFlag) -> None:
        config, total = self.config, self.total_updates * self.per_update
        while self.steps < total:
            if signals.received is not None:
                raise self._interrupted(signals)
            before = self._train_chunk()
            progress.update(self.steps)
            if self._due(config.checkpoint_interval, before):
                self.metrics.flush()
                self.checkpoint()
            self._postfix(progress)

    def _interrupted(self, signals: SignalFlag) -> Interrupted:
        self.metrics.flush()
        self.checkpoint()
        return interrupted(signals, self.steps, self.dir)

    def _stopped(self, error: NonFiniteDataError) -> NonFiniteDataError:
        """Save the state if it is still finite; the error to stop the run with."""
        self.metrics.flush()
        return stopped(error, self.dir, self.steps, self.checkpoint)

    def run(self) -> dict[str, Any]:
        """Train to ``timesteps`` (rounded up to whole updates), evaluating and checkpointing between chunks.

        Returns:
            The summary (also written to ``summary.json``).

        Raises:
            Interrupted: On SIGINT or SIGTERM, after writing a checkpoint.
            DivergenceError: On NaN/inf in a loss or the agent's state, after writing a checkpoint if the
                state is still finite.
        """
        config, start_steps = self.config, self.steps
        progress = Progress(self.total_updates * self.per_update, self.steps, enabled=config.progress)
        try:
            with SignalFlag() as signals:
                self._loop(progress, signals)
                progress.close()
                if self.last_eval_step != self.steps:  # a resumed run that had no steps left to train
                    self.evaluate()
                end = time.perf_counter()
                gymnasium_returns = self.evaluate_gymnasium()
                if self.last_checkpoint != self.steps:
                    self.checkpoint()
        except NonFiniteDataError as error:
            raise self._stopped(error) from None
        finally:
            progress.close()
        self.metrics.close()
        summary = self._summary(end - self.start, self.steps - start_steps, gymnasium_returns)
        write_text_atomic(self.dir / "summary.json", json.dumps(summary, indent=2, allow_nan=False))
        return summary

    def _summary(self, wall: float, steps: int, gymnasium_returns: np.ndarray | None) -> dict[str, Any]:
        """The summary; ``wall_time_s`` runs from the trainer's construction (model building, compilation)."""
        returns = self.last_eval if self.last_eval is not None else np.zeros(0)
        config = self.config
        summary = {
            "algo": config.algo,
            "backend": "jax",
            "env": config.env,
            "policy": config.policy,
            "timesteps": self.steps,
            "seed": config.seed,
            "num_envs": config.envs,
            "eval_return_mean": float(returns.mean()),
            "eval_return_std": float(returns.std()),
            "eval_episodes": int(returns.size),
            "gymnasium_eval_return_mean": None if gymnasium_returns is None else float(gymnasium_returns.mean()),
            "gymnasium_eval_return_std": None if gymnasium_returns is None else float(gymnasium_returns.std()),
            "wall_time_s": round(wall, 3),
            "env_steps_per_s": round(steps / wall, 1) if wall > 0 else None,
            "devices": len(jax.local_devices()),
            "resumed": config.resume is not None,
            "env_steps_per_s_compiled": self._compiled_rate(0),
            "env_steps_per_cpu_s_compiled": self._compiled_rate(1),
        }
        return summary

    def _compiled_rate(self, column: int) -> float | None:
        """Env steps per second (column 0: wall, 1: CPU) of the chunks after the first, which compiles."""
        seconds = sum(times[column] for times in self.chunk_times[1:])
        steps = (len(self.chunk_times) - 1) * self.updates_per_chunk * self.per_update
        return round(steps / seconds, 1) if seconds > 0 else None

    def close(self) -> None:
        """Nothing to close (the environments live in the compiled program); for the trainer interface."""
