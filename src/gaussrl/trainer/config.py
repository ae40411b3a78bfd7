"""What a training run is: :class:`TrainConfig` and the option types it is built from; imports no backend.

The command line (:mod:`gaussrl.trainer.cli`) parses into a :class:`TrainConfig` before any
backend is chosen, so that a run which never touches torch (``--backend jax --env gymnax/<id>``,
compiled end to end) does not pay for importing it. torch is imported here only to check a
``--device`` other than ``cpu``.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gaussrl.agents.config import PPOConfig, SACConfig, check_int_range, check_positive_int
from gaussrl.core.errors import ConfigError
from gaussrl.envs.step import NonFinite, Vectorization
from gaussrl.trainer.resume import check_resume_options

Algo = Literal["ppo", "sac"]
PolicyKind = Literal["mlp", "rnn", "gru", "lstm"]
Backend = Literal["torch", "jax", "warp"]
BACKENDS = ("torch", "jax", "warp")
ONE_THREAD_XLA_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
"""XLA:CPU on one thread, as ``--threads 1`` asks (read when JAX starts its CPU backend)."""


def use_one_xla_thread(threads: int) -> None:
    """For ``--threads 1``, put XLA:CPU on one thread unless ``XLA_FLAGS`` is set; call before JAX starts its backend.

    Args:
        threads: The run's ``--threads``.
    """
    if threads == 1:
        os.environ.setdefault("XLA_FLAGS", ONE_THREAD_XLA_FLAGS)


MAX_THREADS = 4 * (os.cpu_count() or 1)
"""The most torch threads a run may ask for (more oversubscribes the CPU; torch crashes on absurd counts)."""
MAX_SEED = 2**32 - 1
"""The largest run seed: every seed derived from it fits the RNGs of torch, NumPy and Gymnasium."""


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """A training run. The defaults train PPO on Pendulum-v1 to a return above -200."""

    algo: Algo = "ppo"
    """Algorithm: ppo or sac."""
    backend: Backend = "torch"
    """Agents' backend: torch, jax or warp (MLP policies; trainer/backends.py); gymnax/<id> envs train on jax."""
    env: str = "Pendulum-v1"
    """Gymnasium id of an environment with a Box action space."""
    timesteps: int = 100_000
    """Total environment steps (summed over the parallel environments and the ranks)."""
    num_envs: int | None = None
    """Parallel environments; None: 4 for PPO, 1 for SAC."""
    seed: int = 0
    """Seed of the networks, the sampling and the environment resets."""
    policy: PolicyKind = "mlp"
    """PPO policy network: mlp, rnn, gru or lstm (SAC: mlp only)."""
    out: str | None = None
    """Run directory; None: runs/<algo>-<env>-seed<seed> (or the --resume directory). A new run refuses a
    directory that holds a run (see --resume and --force)."""
    resume: str | None = None
    """Run directory to continue, with its config.json, from its newest checkpoint (or --checkpoint)."""
    checkpoint: int | None = None
    """With --resume: the step of the checkpoint to continue from; None: the newest."""
    force: bool = False
    """Start a new run in a directory that holds one, deleting that run's files first."""
    preset: bool = True
    """Start from the env's preset (trainer/presets.py: Pendulum-v1's PPO discount, the MuJoCo locomotion
    family, ...); --no-preset: from the plain defaults. Options on the command line override either."""
    nonfinite: NonFinite = "stop"
    """NaN/inf from the environment: stop (after a checkpoint), or skip (leave that environment step out of
    training; counted in summary.json)."""
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
    nproc: int = 1
    """Ranks of a data-parallel run started on this node through torch's elastic launcher (as torchrun)."""
    dist_timeout: float = 300.0
    """Seconds a rank waits for the others in a collective before the run stops with an error."""
    tensorboard: bool = True
    """Write TensorBoard scalars."""
    wandb: bool = False
    """Log the scalars to Weights & Biases too (pip install "gaussrl[wandb]"; WANDB_MODE=offline: no network)."""
    ppo: PPOConfig = field(default_factory=PPOConfig)
    """PPO hyperparameters."""
    sac: SACConfig = field(default_factory=SACConfig)
    """SAC hyperparameters."""

    def __post_init__(self) -> None:
        for name in ("timesteps", "eval_episodes", "keep_checkpoints", "threads", "nproc"):
            check_positive_int(self, name)
        check_int_range(self, "threads", 1, MAX_THREADS, "one thread is fastest for gaussrl's small networks")
        check_int_range(self, "seed", 0, MAX_SEED, "any non-negative 32-bit integer works")
        check_device(self.device)
        for name in ("eval_interval", "checkpoint_interval"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}={getattr(self, name)} must be >= 0 (0: only at the end).")
        if not self.dist_timeout > 0:
            raise ConfigError(f"dist_timeout={self.dist_timeout} must be > 0 seconds (default 300.0).")
        envs = self.num_envs
        if envs is not None and (isinstance(envs, bool) or not isinstance(envs, int) or envs < 1):
            raise ConfigError(f"num_envs={envs!r} must be a positive integer, or None for the algorithm's default.")
        self._check_backend()
        if self.algo == "sac" and self.policy != "mlp":
            raise ConfigError(f"policy={self.policy!r} is for PPO; SAC trains an MLP policy (--policy mlp).")
        check_resume_options(resume=self.resume, out=self.out, checkpoint=self.checkpoint, force=self.force)

    def _check_backend(self) -> None:
        """Raise a ``ConfigError`` for options the chosen backend does not train with."""
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend={self.backend!r} must be one of {BACKENDS} (the default is 'torch').")
        if self.backend != "torch" and self.policy != "mlp":
            raise ConfigError(
                f"policy={self.policy!r} trains on the torch backend only; use --backend torch or --policy mlp."
            )
        if self.backend != "torch" and self.nproc != 1:
            jax_devices = " (a gymnax env on --backend jax uses every local device by itself)"
            raise ConfigError(
                f"nproc={self.nproc}: data-parallel processes train on the torch backend only; use --nproc 1 "
                f"with --backend {self.backend}{jax_devices if self.backend == 'jax' else ''}."
            )
        if self.backend == "warp" and self.algo == "ppo" and self.ppo.reward_normalization:
            raise ConfigError(
                "--ppo.reward-normalization is implemented by the torch and jax agents, not the Warp agent; use "
                "--backend torch or jax, or drop it (--ppo.no-reward-normalization)."
            )

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

        ``checkpoint`` and ``force`` say how this command started, not what the run is, and are left out.

        Returns:
            A dict.
        """
        data = dataclasses.asdict(self)
        for name in ("sac" if self.algo == "ppo" else "ppo", "checkpoint", "force"):
            data.pop(name)
        data["num_envs"] = self.envs
        return data


def check_device(device: str) -> None:
    """Accept a torch device string that names a device this machine has.

    Args:
        device: E.g. ``"cpu"``, ``"cuda"``, ``"cuda:1"``.

    Raises:
        ConfigError: If the string is not a torch device, or names CUDA or MPS where there is none.
    """
    if device == "cpu":  # the default, and the device of every run that does not train with torch
        return
    import torch  # noqa: PLC0415 (only another device needs torch to check it)

    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"device={device!r} (--device) is not a torch device; use cpu, cuda or cuda:N.") from None
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (parsed.index or 0) >= count:
            raise ConfigError(
                f"device={device!r} (--device) is not available: this machine has {count} usable CUDA device(s) "
                f"(torch {torch.__version__}); use --device cpu, or a torch build with CUDA on a machine with a GPU."
            )
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device={device!r} (--device) is not available on this machine; use --device cpu.")
