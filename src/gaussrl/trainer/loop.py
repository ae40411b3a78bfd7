"""The training loop (torch agents): environment steps, evaluation, metrics, checkpoints, resume and the summary.

A run directory holds ``config.json``, ``metrics.jsonl``, ``tensorboard/``, ``checkpoints/`` and,
at the end, ``summary.json``. Every file gaussrl writes there is written atomically, and every
JSON file is strict JSON (a value that is not a finite number is written as ``null``).

A run stops early, with a checkpoint of its last good state, on SIGINT/SIGTERM
(:class:`~gaussrl.trainer.stops.Interrupted`) and on NaN/inf from the environment or in the
losses (:class:`~gaussrl.envs.gymnasium.NonFiniteDataError`; with ``nonfinite="skip"`` such
environment steps are left out of training and counted instead).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gaussrl.core.errors import ConfigError
from gaussrl.envs.gymnasium import TorchVecEnv, make_vector_env
from gaussrl.envs.step import NonFiniteDataError
from gaussrl.io.atomic import write_text_atomic
from gaussrl.io.checkpoint import CheckpointError, first_nonfinite, save_checkpoint
from gaussrl.trainer.backends import build_array_agent
from gaussrl.trainer.build import build_ppo, build_sac
from gaussrl.trainer.config import TrainConfig
from gaussrl.trainer.distributed import World, broadcast_agent, gather_to_main, rank_seed, scatter_from_main
from gaussrl.trainer.evaluate import Agent, Evaluator
from gaussrl.trainer.metrics import MetricsLog, finite_or_none, require_wandb
from gaussrl.trainer.progress import Progress
from gaussrl.trainer.resume import ResumeError, load_resume, resume_command, run_meta
from gaussrl.trainer.rundir import CHECKPOINTS, prepare_run_dir
from gaussrl.trainer.stops import DivergenceError, Interrupted, SignalFlag, check_update, interrupted, stopped

UPDATE_LOG_INTERVAL = 1000
"""SAC updates every step; its update metrics are logged once per this many environment steps."""


def build_agent(config: TrainConfig, env: TorchVecEnv, world: World | None = None) -> Agent:
    """The configured agent for ``env``.

    Args:
        config: The run.
        env: The training environment.
        world: The ranks of a data-parallel run; None: one process.

    Returns:
        PPO or SAC (a non-torch agent wrapped in :class:`~gaussrl.trainer.backends.ArrayBoundary`).
    """
    if config.backend == "warp":
        from gaussrl.trainer.warp_backend import build_warp_agent  # noqa: PLC0415 (Warp is optional)

        return build_warp_agent(config, env)
    if config.backend != "torch":
        return build_array_agent(
            config.backend,
            config.algo,
            env,
            agents=(config.ppo, config.sac),
            seed=config.seed,
            threads=config.threads,
            total_timesteps=config.timesteps,
        )
    world = World() if world is None else world
    spaces = (env.observation_space, env.action_space)
    if config.algo == "ppo":
        return build_ppo(
            config.ppo,
            *spaces,
            num_envs=env.num_envs,
            device=config.device,
            policy=config.policy,
            total_timesteps=config.timesteps // world.size,  # this rank's share, for the "linear" schedule
            world=world,
        )
    return build_sac(config.sac, *spaces, num_envs=env.num_envs, device=config.device, world=world)


class Trainer:
    """One training run; :meth:`run` trains and returns the summary.

    The run directory is checked (not another run's, writable) and, on resume, the configuration
    and checkpoint are checked before anything is built.

    Args:
        config: The run.
        world: This rank of a data-parallel run (see ``trainer.distributed``); None: one process.

    Raises:
        RunDirectoryError: For a directory that holds another run, is a file or is not writable.
        CheckpointError: For a missing or corrupt checkpoint on resume.
        ResumeError: For a resume request that does not match the run.
        ConfigError: For ``nonfinite="skip"`` in a data-parallel run.
    """

    def __init__(self, config: TrainConfig, world: World | None = None) -> None:
        self.config, self.world = config, World() if world is None else world
        self.dir = config.run_dir
        main = self.world.is_main
        if self.world.size > 1 and config.nonfinite == "skip":
            raise ConfigError(
                "nonfinite='skip' would leave the ranks' rollouts out of step in a data-parallel run; "
                "use --nonfinite stop (the default) or train in one process."
            )
        resumed = self._load(config) if config.resume is not None else None
        if config.wandb and main:
            require_wandb()
        if main:
            prepare_run_dir(self.dir, resume=resumed is not None, force=config.force)
        torch.set_num_threads(config.threads)
        torch.manual_seed(config.seed)
        vector_env = make_vector_env(config.env, config.envs, config.vectorization)
        self.env = TorchVecEnv(
            vector_env,
            seed=config.seed,
            device=config.device,
            name=config.env,
            nonfinite=config.nonfinite,
            index_offset=self.world.rank * config.envs,
        )
        self.agent = build_agent(config, self.env, self.world)
        broadcast_agent(self.world, self.agent)  # type: ignore[arg-type]
        if self.world.rank > 0:
            torch.manual_seed(rank_seed(config.seed, self.world.rank))
        self.evaluator = (
            Evaluator(config.env, config.eval_episodes, config.seed, config.device, config.nonfinite) if main else None
        )
        self.steps = 0
        self.skipped = 0
        self.last_eval: np.ndarray | None = None
        self.recent: list[float] = []
        self.resumed_step = resumed[2] if resumed is not None else None
        if resumed is None:
            self.observations = self.env.reset()
        else:
            self.observations = self._restore(resumed[0])
        self.last_checkpoint = self.resumed_step
        if main:
            write_text_atomic(self.dir / "config.json", json.dumps(config.to_json(), indent=2, allow_nan=False))
        wandb = config.to_json() if config.wandb and main else None
        self.metrics = MetricsLog(
            self.dir, resume_step=self.resumed_step, tensorboard=config.tensorboard, wandb=wandb, enabled=main
        )

    def _load(self, config: TrainConfig) -> tuple[dict[str, Any], dict[str, Any], int]:
        """This rank's checkpoint state, the metadata and the step (rank 0 reads the file, sends each rank its part)."""

        def per_rank() -> list[tuple[dict[str, Any], dict[str, Any], int]]:
            state, meta, step = load_resume(config, self.world.size)
            return [(state, meta, step)] + [(s, meta, step) for s in state.pop("other_ranks", [])]

        if self.world.size == 1:
            return load_resume(config)
        return scatter_from_main(self.world, per_rank, ResumeError)

    def _restore(self, state: dict[str, Any]) -> torch.Tensor:
        self.agent.load_state(state["agent"])
        torch.set_rng_state(state["torch_rng"])
        self.steps = int(state["steps"])
        self.skipped = int(state.get("skipped", 0))
        self.recent = [float(r) for r in state["recent_returns"]]
        return self.env.load_state(state["env"])

    def checkpoint(self) -> Path | None:
        """Write a checkpoint of everything a resumed run needs (every rank's state, written by rank 0).

        Returns:
            The checkpoint's JSON file; None on ranks other than 0.

        Raises:
            NonFiniteDataError: If the agent's state holds NaN or infinity (nothing is written).
        """
        agent = self.agent.state()
        bad = first_nonfinite(agent)
        if bad is not None:
            raise DivergenceError(f"the agent's {bad} holds NaN or infinity after {self.steps} steps")
        state = {
            "agent": agent,
            "torch_rng": torch.get_rng_state(),
            "steps": self.steps,
            "skipped": self.skipped,
            "env": self.env.state(),
            "recent_returns": self.recent[-100:],
        }
        states = gather_to_main(self.world, state)
        self.last_checkpoint = self.steps
        if states is None:
            return None
        if self.world.size > 1:
            state["other_ranks"] = states[1:]
        meta = {**run_meta(self.config), "steps": self.steps, "seed": self.config.seed, "world_size": self.world.size}
        return save_checkpoint(self.dir / CHECKPOINTS, self.steps, state, meta, keep=self.config.keep_checkpoints)

    def evaluate(self) -> np.ndarray:
        """Run a deterministic evaluation and log it.

        Returns:
            The returns of the episodes that finished with finite values (all of them unless
            ``nonfinite="skip"`` left some out).
        """
        if self.evaluator is None:  # ranks other than 0 do not evaluate
            return np.zeros(0)
        try:
            returns = self.evaluator.run(self.agent, deterministic=True)
        except NonFiniteDataError as error:
            raise NonFiniteDataError(f"{error}, in the evaluation after {self.steps} steps of training") from None
        returns = np.asarray(returns[np.isfinite(returns)])
        self.last_eval = returns
        mean, std = (float(returns.mean()), float(returns.std())) if returns.size else (math.nan, math.nan)
        self.metrics.add("eval", self.steps, {"return_mean": mean, "return_std": std})
        self.metrics.flush()
        return returns

    def _due(self, interval: int, before: int) -> bool:
        return interval > 0 and self.steps // interval > before // interval

    def _step(self) -> dict[str, float]:
        actions = self.agent.act(self.observations)
        try:
            step = self.env.step(actions)
        except NonFiniteDataError as error:
            raise NonFiniteDataError(f"{error}, after {self.steps} environment steps of training") from None
        self.observations = step.observations
        if step.skipped is not None:
            # The vector step holds no valid transition: the agent never sees it (its pending action is dropped).
            self.skipped += int(step.skipped.sum())
            update: dict[str, float] = {}
        else:
            update = self.agent.observe(step)
        self.steps += self.env.num_envs * self.world.size
        check_update(update, self.config.algo, self.steps)
        for episode_return, length in self.env.pop_episodes():
            self.recent.append(episode_return)
            self.metrics.add("episode", self.steps, {"return": episode_return, "length": float(length)})
        return update

    def _postfix(self, progress: Progress) -> None:
        postfix = {"return": f"{np.mean(self.recent[-20:]):.1f}" if self.recent else "-"}
        if self.last_eval is not None and self.last_eval.size:
            postfix["eval"] = f"{self.last_eval.mean():.1f}"
        progress.set_postfix(postfix)

    def _loop(self, progress: Progress, signals: SignalFlag) -> None:
        config = self.config
        last_update_log = self.steps
        while self.steps < config.timesteps:
            if signals.received is not None:
                raise self._interrupted(signals)
            before = self.steps
            update = self._step()
            progress.update(self.steps)
            if update and (config.algo == "ppo" or self.steps - last_update_log >= UPDATE_LOG_INTERVAL):
                self.metrics.add("update", self.steps, update)
                last_update_log = self.steps
                self._postfix(progress)
            if self._due(config.eval_interval, before):
                self.evaluate()
                self._postfix(progress)
            if self._due(config.checkpoint_interval, before):
                self.metrics.flush()
                self.checkpoint()

    def _interrupted(self, signals: SignalFlag) -> Interrupted:
        self.metrics.flush()
        if self.world.size > 1:  # the ranks see the signal at different steps: no collective checkpoint
            return Interrupted(
                int(signals.received or 0),
                f"{signals.name} after {self.steps} steps: a data-parallel run does not checkpoint on a signal; "
                f"continue from its newest checkpoint with the same number of ranks: {resume_command(self.dir)}",
            )
        self.checkpoint()
        return interrupted(signals, self.steps, self.dir)

    def _stopped(self, error: NonFiniteDataError) -> NonFiniteDataError:
        """Save the state if it is still finite; the error to stop the run with."""
        self.metrics.flush()
        alone = self.world.size > 1  # this rank stopped alone: the others cannot join in a checkpoint
        return stopped(error, self.dir, self.steps, None if alone else self.checkpoint)

    def run(self) -> dict[str, Any]:
        """Train to ``timesteps``, evaluating and checkpointing on the way; write ``summary.json``.

        Returns:
            The summary.

        Raises:
            Interrupted: On SIGINT or SIGTERM, after writing a checkpoint.
            NonFiniteDataError: On NaN/inf from the environment (unless ``nonfinite="skip"``) or in a
                loss, after writing a checkpoint if the agent's state is still finite.
        """
        config, start_steps, start = self.config, self.steps, time.perf_counter()
        progress = Progress(config.timesteps, self.steps, enabled=config.progress and self.world.is_main)
        try:
            with SignalFlag() as signals:
                self._loop(progress, signals)
                progress.close()
                wall = time.perf_counter() - start
                last_step = self.steps - self.env.num_envs * self.world.size
                if self.last_eval is None or not self._due(config.eval_interval, last_step):
                    self.evaluate()
                if self.last_checkpoint != self.steps:
                    self.checkpoint()
        except NonFiniteDataError as error:
            raise self._stopped(error) from None
        finally:
            progress.close()
        self.metrics.close()
        return self._summary(wall, self.steps - start_steps)

    def _summary(self, wall: float, steps: int) -> dict[str, Any]:
        returns = self.last_eval if self.last_eval is not None else np.zeros(0)
        summary = {
            "algo": self.config.algo,
            "backend": self.config.backend,
            "env": self.config.env,
            "policy": self.config.policy,
            "timesteps": self.steps,
            "seed": self.config.seed,
            "num_envs": self.env.num_envs,
            "world_size": self.world.size,
            "eval_return_mean": finite_or_none(float(returns.mean())) if returns.size else None,
            "eval_return_std": finite_or_none(float(returns.std())) if returns.size else None,
            "eval_episodes": int(returns.size),
            "wall_time_s": round(wall, 3),
            "env_steps_per_s": round(steps / wall, 1) if wall > 0 else None,
            "resumed": self.config.resume is not None,
            "nonfinite_skipped": self.skipped,
        }
        if self.world.is_main:
            write_text_atomic(self.dir / "summary.json", json.dumps(summary, indent=2, allow_nan=False))
        return summary

    def close(self) -> None:
        """Close the environments and the metrics log."""
        self.env.close()
        if self.evaluator is not None:
            self.evaluator.close()
        self.metrics.close()


def train(config: TrainConfig) -> dict[str, Any]:
    """Train as configured and return the summary (also written to ``summary.json``).

    Args:
        config: The run.

    Returns:
        The summary.

    Raises:
        CheckpointError: For a missing or corrupt checkpoint on resume.
        ResumeError: For a resume request that does not match the run.
        RunDirectoryError: For a directory that holds another run, is a file or is not writable.
        EnvError: For an unknown environment or one without a Box action space.
        NonFiniteDataError: For NaN/inf from the environment or in a loss (after a checkpoint).
        Interrupted: On SIGINT or SIGTERM (after a checkpoint).
    """
    trainer = Trainer(config)
    try:
        return trainer.run()
    finally:
        trainer.close()


__all__ = [
    "CHECKPOINTS",
    "CheckpointError",
    "DivergenceError",
    "Interrupted",
    "NonFiniteDataError",
    "ResumeError",
    "TrainConfig",
    "Trainer",
    "build_agent",
    "resume_command",
    "train",
]
