"""The training loop: environment steps, evaluation, metrics, checkpoints, resume and the summary.

A run directory holds ``config.json``, ``metrics.jsonl``, ``tensorboard/``, ``checkpoints/`` and,
at the end, ``summary.json``. Every file gaussrl writes there is written atomically.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from gaussrl.agents.config import PPOConfig, SACConfig, check_positive_int
from gaussrl.core.errors import GaussrlError
from gaussrl.envs.gymnasium import TorchVecEnv, Vectorization, make_vector_env
from gaussrl.io.atomic import write_text_atomic
from gaussrl.io.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from gaussrl.trainer.backends import BACKENDS, Backend, build_array_agent
from gaussrl.trainer.build import Algo, PolicyKind, build_ppo, build_sac
from gaussrl.trainer.evaluate import Agent, Evaluator
from gaussrl.trainer.metrics import MetricsLog

CHECKPOINTS = "checkpoints"
UPDATE_LOG_INTERVAL = 1000
"""SAC updates every step; its update metrics are logged once per this many environment steps."""


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """A training run. The defaults train PPO on Pendulum-v1 to a return above -200."""

    algo: Algo = "ppo"
    """Algorithm: ppo or sac."""
    backend: Backend = "torch"
    """Agents' backend: torch or jax (MLP policies; see trainer/backends.py); gymnax/<id> envs train compiled on jax."""
    env: str = "Pendulum-v1"
    """Gymnasium id of an environment with a Box action space."""
    timesteps: int = 100_000
    """Total environment steps (summed over the parallel environments)."""
    num_envs: int | None = None
    """Parallel environments; None: 4 for PPO, 1 for SAC."""
    seed: int = 0
    """Seed of the networks, the sampling and the environment resets."""
    policy: PolicyKind = "mlp"
    """PPO policy network: mlp, rnn, gru or lstm (SAC: mlp only)."""
    out: str | None = None
    """Run directory; None: runs/<algo>-<env>-seed<seed> (or the --resume directory)."""
    resume: str | None = None
    """Run directory to continue from its latest checkpoint."""
    eval_interval: int = 10_000
    """Environment steps between deterministic evaluations; 0: only at the end."""
    eval_episodes: int = 20
    """Episodes per evaluation (run in parallel)."""
    checkpoint_interval: int = 20_000
    """Environment steps between checkpoints; 0: only at the end."""
    keep_checkpoints: int = 3
    """Checkpoints kept on disk."""
    vectorization: Vectorization = "sync"
    """Gymnasium vector env: sync (one process) or async (subprocesses)."""
    threads: int = 1
    """torch CPU threads; one is fastest for gaussrl's small networks."""
    device: str = "cpu"
    """torch device."""
    progress: bool = True
    """Show a progress bar."""
    tensorboard: bool = True
    """Write TensorBoard scalars."""
    ppo: PPOConfig = field(default_factory=PPOConfig)
    """PPO hyperparameters."""
    sac: SACConfig = field(default_factory=SACConfig)
    """SAC hyperparameters."""

    def __post_init__(self) -> None:
        for name in ("timesteps", "eval_episodes", "keep_checkpoints", "threads"):
            check_positive_int(self, name)
        for name in ("eval_interval", "checkpoint_interval"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 0 (0: only at the end).")
        envs = self.num_envs
        if envs is not None and (isinstance(envs, bool) or not isinstance(envs, int) or envs < 1):
            raise ValueError(f"num_envs={envs!r} must be a positive integer, or None for the algorithm's default.")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend={self.backend!r} must be one of {BACKENDS} (the default is 'torch').")
        if self.backend != "torch" and self.policy != "mlp":
            raise ValueError(
                f"policy={self.policy!r} trains on the torch backend only; use --backend torch or --policy mlp."
            )
        if self.algo == "sac" and self.policy != "mlp":
            raise ValueError(f"policy={self.policy!r} is for PPO; SAC trains an MLP policy (--policy mlp).")

    @property
    def envs(self) -> int:
        """The number of parallel environments after defaults."""
        return self.num_envs if self.num_envs is not None else (4 if self.algo == "ppo" else 1)

    @property
    def run_dir(self) -> Path:
        """The run directory after defaults."""
        if self.out is not None:
            return Path(self.out)
        if self.resume is not None:
            return Path(self.resume)
        return Path("runs") / f"{self.algo}-{self.env.replace('/', '_')}-seed{self.seed}"

    def to_json(self) -> dict[str, Any]:
        """The configuration as JSON values (only the selected algorithm's hyperparameters).

        Returns:
            A dict.
        """
        data = dataclasses.asdict(self)
        data.pop("sac" if self.algo == "ppo" else "ppo")
        data["num_envs"] = self.envs
        return data


class ResumeError(GaussrlError, ValueError):
    """A resume directory that does not match the requested run."""


def build_agent(config: TrainConfig, env: TorchVecEnv) -> Agent:
    """The configured agent for ``env``.

    Args:
        config: The run.
        env: The training environment.

    Returns:
        PPO or SAC (a non-torch agent wrapped in :class:`~gaussrl.trainer.backends.ArrayBoundary`).
    """
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
    common = {"num_envs": env.num_envs, "device": config.device}
    if config.algo == "ppo":
        spaces = (env.observation_space, env.action_space)
        return build_ppo(config.ppo, *spaces, policy=config.policy, total_timesteps=config.timesteps, **common)
    return build_sac(config.sac, env.observation_space, env.action_space, **common)


def _meta(config: TrainConfig) -> dict[str, Any]:
    return {
        "algo": config.algo,
        "backend": config.backend,
        "env": config.env,
        "policy": config.policy,
        "num_envs": config.envs,
    }


def load_resume(config: TrainConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read the latest checkpoint of ``config.resume`` and check that it belongs to this run.

    Args:
        config: The run, with ``resume`` set.

    Returns:
        The checkpoint state and metadata.

    Raises:
        CheckpointError: If the checkpoint is missing or corrupt.
        ResumeError: If it was written by a run of another algorithm, env, policy or env count.
    """
    state, meta = load_checkpoint(Path(str(config.resume)) / CHECKPOINTS, device=config.device)
    for key, want in _meta(config).items():
        got = meta.get(key, "torch" if key == "backend" else None)  # checkpoints before backends were torch's
        if got != want:
            raise ResumeError(
                f"cannot resume {config.resume!r}: it holds a run with {key}={got!r}, but this command "
                f"asks for {key}={want!r}; pass --{key.replace('_', '-')} {got} or another directory."
            )
    return state, meta


class Trainer:
    """One training run; :meth:`run` trains and returns the summary.

    Args:
        config: The run.
    """

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.dir = config.run_dir
        torch.set_num_threads(config.threads)
        resumed = load_resume(config) if config.resume is not None else None
        torch.manual_seed(config.seed)
        vector_env = make_vector_env(config.env, config.envs, config.vectorization)
        self.env = TorchVecEnv(vector_env, seed=config.seed, device=config.device)
        self.agent = build_agent(config, self.env)
        self.evaluator = Evaluator(config.env, config.eval_episodes, config.seed, config.device)
        self.steps = 0
        self.last_eval: np.ndarray | None = None
        self.recent: list[float] = []
        if resumed is None:
            self.observations = self.env.reset()
        else:
            self.observations = self._restore(resumed[0])
        write_text_atomic(self.dir / "config.json", json.dumps(config.to_json(), indent=2))
        self.metrics = MetricsLog(self.dir, resume_step=self.steps if resumed else None, tensorboard=config.tensorboard)

    def _restore(self, state: dict[str, Any]) -> torch.Tensor:
        self.agent.load_state(state["agent"])
        torch.set_rng_state(state["torch_rng"])
        self.steps = int(state["steps"])
        self.recent = [float(r) for r in state["recent_returns"]]
        return self.env.load_state(state["env"])

    def checkpoint(self) -> Path:
        """Write a checkpoint of everything a resumed run needs.

        Returns:
            The checkpoint's JSON file.
        """
        state = {
            "agent": self.agent.state(),
            "torch_rng": torch.get_rng_state(),
            "steps": self.steps,
            "env": self.env.state(),
            "recent_returns": self.recent[-100:],
        }
        meta = {**_meta(self.config), "steps": self.steps, "seed": self.config.seed}
        return save_checkpoint(self.dir / CHECKPOINTS, self.steps, state, meta, keep=self.config.keep_checkpoints)

    def evaluate(self) -> np.ndarray:
        """Run a deterministic evaluation and log it.

        Returns:
            The episode returns.
        """
        returns = self.evaluator.run(self.agent, deterministic=True)
        self.last_eval = returns
        self.metrics.add("eval", self.steps, {"return_mean": float(returns.mean()), "return_std": float(returns.std())})
        self.metrics.flush()
        return returns

    def _due(self, interval: int, before: int) -> bool:
        return interval > 0 and self.steps // interval > before // interval

    def _step(self) -> dict[str, float]:
        actions = self.agent.act(self.observations)
        step = self.env.step(actions)
        update = self.agent.observe(step)
        self.observations = step.observations
        self.steps += self.env.num_envs
        for episode_return, length in self.env.pop_episodes():
            self.recent.append(episode_return)
            self.metrics.add("episode", self.steps, {"return": episode_return, "length": float(length)})
        return update

    def _postfix(self, bar: tqdm) -> None:  # type: ignore[type-arg]
        postfix = {"return": f"{np.mean(self.recent[-20:]):.1f}" if self.recent else "-"}
        if self.last_eval is not None:
            postfix["eval"] = f"{self.last_eval.mean():.1f}"
        bar.set_postfix(postfix, refresh=False)

    def run(self) -> dict[str, Any]:
        """Train to ``timesteps``, evaluating and checkpointing on the way; write ``summary.json``.

        Returns:
            The summary.
        """
        config, start_steps, start = self.config, self.steps, time.perf_counter()
        bar = tqdm(total=config.timesteps, initial=self.steps, unit="step", disable=not config.progress, smoothing=0.1)
        last_update_log = self.steps
        while self.steps < config.timesteps:
            before = self.steps
            update = self._step()
            bar.update(self.steps - before)
            if update and (config.algo == "ppo" or self.steps - last_update_log >= UPDATE_LOG_INTERVAL):
                self.metrics.add("update", self.steps, update)
                last_update_log = self.steps
                self._postfix(bar)
            if self._due(config.eval_interval, before):
                self.evaluate()
                self._postfix(bar)
            if self._due(config.checkpoint_interval, before):
                self.metrics.flush()
                self.checkpoint()
        bar.close()
        wall = time.perf_counter() - start
        if self.last_eval is None or not self._due(config.eval_interval, self.steps - self.env.num_envs):
            self.evaluate()
        self.checkpoint()
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
            "eval_return_mean": float(returns.mean()),
            "eval_return_std": float(returns.std()),
            "eval_episodes": int(returns.size),
            "wall_time_s": round(wall, 3),
            "env_steps_per_s": round(steps / wall, 1) if wall > 0 else None,
            "resumed": self.config.resume is not None,
        }
        write_text_atomic(self.dir / "summary.json", json.dumps(summary, indent=2))
        return summary

    def close(self) -> None:
        """Close the environments."""
        self.env.close()
        self.evaluator.close()


def train(config: TrainConfig) -> dict[str, Any]:
    """Train as configured and return the summary (also written to ``summary.json``).

    Args:
        config: The run.

    Returns:
        The summary.

    Raises:
        CheckpointError: For a missing or corrupt checkpoint on resume.
        ResumeError: For a resume directory of another run.
        EnvError: For an unknown environment or one without a Box action space.
    """
    trainer = Trainer(config)
    try:
        return trainer.run()
    finally:
        trainer.close()


__all__ = ["CheckpointError", "ResumeError", "TrainConfig", "Trainer", "build_agent", "train"]
