"""``gaussrl export``: a run's checkpoint to one self-contained ONNX or TorchScript file.

The run's agent is rebuilt from its ``config.json``, its checkpoint is loaded, and the policy
with the observation statistics and the action rescaling goes to :mod:`gaussrl.io.export`.
Every agent gives its policy as arrays under the torch twin's names (``policy_arrays()``), which
are loaded into a fresh torch policy of the run's configuration, so every backend exports
through the one torch exporter.
"""

from __future__ import annotations

import dataclasses
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import tyro

from gaussrl.agents.policy_arrays import PolicyArrays
from gaussrl.core.errors import ConfigError
from gaussrl.core.running import NORMALIZED_CLIP
from gaussrl.envs import is_gymnax_id
from gaussrl.io.checkpoint import CheckpointError
from gaussrl.trainer.config import TrainConfig
from gaussrl.trainer.rundir import load_run_checkpoint

ExportFormat = Literal["onnx", "torchscript"]
SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt"}


@dataclass(frozen=True, kw_only=True)
class ExportArgs:
    """Export a run's policy (observation normalisation and action rescaling included) to one file."""

    run_dir: Annotated[str, tyro.conf.Positional]
    """Run directory written by gaussrl train."""
    format: ExportFormat = "onnx"
    """onnx (run with onnxruntime) or torchscript (load with torch.jit.load)."""
    out: str | None = None
    """Output file; None: policy.onnx or policy.pt in the run directory."""
    checkpoint: int | None = None
    """Step of the checkpoint to export; None: the newest."""


def load_agent_state(agent: Any, state: dict[str, Any], run_dir: str | Path, step: int) -> None:
    """Load a checkpoint's agent state, turning a mismatch with the run's configuration into a message.

    Args:
        agent: The agent built from ``config.json``.
        state: The checkpoint state.
        run_dir: The run directory, for the message.
        step: The checkpoint's step, for the message.

    Raises:
        CheckpointError: If the checkpoint's tensors do not fit the agent that config.json describes.
    """
    try:
        agent.load_state(state["agent"])
    except (RuntimeError, KeyError, ValueError, IndexError) as error:
        detail = " ".join(str(error).split())[:300]
        raise CheckpointError(
            f"the checkpoint of step {step} in {str(run_dir)!r} does not match the run's config.json ({detail}); "
            f"was config.json edited or copied from another run? Restore the run's own config.json."
        ) from None


def export_run(
    run_dir: str | Path, *, format: ExportFormat = "onnx", out: str | Path | None = None, checkpoint: int | None = None
) -> Path:
    """Write a run's deterministic policy to one file.

    Args:
        run_dir: Run directory.
        format: ``"onnx"`` or ``"torchscript"``.
        out: Output file; ``policy.onnx``/``policy.pt`` in the run directory if None.
        checkpoint: Step of the checkpoint; the newest if None.

    Returns:
        The file written.

    Raises:
        CheckpointError: For a missing or corrupt checkpoint, or one that does not match config.json.
        MissingDependencyError: For ONNX without the onnx extra.
        ConfigError: If ``out`` is a directory.
    """
    # The CLI imports this module, which imports torch only here, when a run is exported.
    from gaussrl.envs.gymnasium import TorchVecEnv, make_vector_env  # noqa: PLC0415
    from gaussrl.io.export import (  # noqa: PLC0415
        DeterministicPolicy,
        export_jit,
        export_onnx,
        require_onnx,
    )
    from gaussrl.trainer.cli import read_run_config  # noqa: PLC0415
    from gaussrl.trainer.loop import build_agent  # noqa: PLC0415

    if format == "onnx":
        require_onnx()
    target = Path(out) if out is not None else Path(run_dir) / f"policy{SUFFIXES[format]}"
    check_output_file(target)
    saved: TrainConfig = read_run_config(run_dir)
    command = f"gaussrl export {shlex.quote(str(run_dir))}"
    state, _, step = load_run_checkpoint(run_dir, checkpoint, device="cpu", command=command)
    config = dataclasses.replace(saved, device="cpu", resume=None, tensorboard=False)
    if is_gymnax_id(config.env):
        module = _compiled_run_policy(config, state)
        (export_onnx if format == "onnx" else export_jit)(module, target)
        return target
    env = TorchVecEnv(make_vector_env(config.env, config.envs), seed=config.seed, device="cpu")
    try:
        agent = build_agent(config, env)
        load_agent_state(agent, state, run_dir, step)
        twin: Any = build_agent(dataclasses.replace(config, backend="torch"), env)
        policy, normalization = _load_twin(twin.policy, agent.policy_arrays())
        module = DeterministicPolicy(policy, env.env_action_space, normalization)
    finally:
        env.close()
    (export_onnx if format == "onnx" else export_jit)(module, target)
    return target


def _load_twin(policy: Any, arrays: PolicyArrays) -> tuple[Any, Any]:
    """Load an agent's policy arrays into its torch twin ``policy``; return it and the observation statistics.

    Args:
        policy: The torch policy of the run's configuration (freshly built).
        arrays: The agent's ``policy_arrays()``.

    Returns:
        ``policy`` and the ``ObservationNormalization`` (None without one).
    """
    import torch  # noqa: PLC0415

    from gaussrl.io.export import ObservationNormalization  # noqa: PLC0415

    def tensor(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.array(array, np.float32))

    policy.load_state_dict({name: tensor(array) for name, array in arrays.state_dict.items()})
    if arrays.obs_mean is None or arrays.obs_std is None:
        return policy, None
    return policy, ObservationNormalization(tensor(arrays.obs_mean), tensor(arrays.obs_std), NORMALIZED_CLIP)


def _compiled_run_policy(config: TrainConfig, state: dict[str, Any]) -> Any:
    """The ``DeterministicPolicy`` of a compiled gymnax run's checkpoint (its torch twin; the gymnax action Box)."""
    from gymnasium import spaces  # noqa: PLC0415

    from gaussrl.io.export import DeterministicPolicy  # noqa: PLC0415
    from gaussrl.trainer.build import build_ppo  # noqa: PLC0415
    from gaussrl.trainer.compiled import compiled_policy_arrays  # noqa: PLC0415 (imports JAX and gymnax)

    arrays, env_box = compiled_policy_arrays(config, state)
    num_observations = arrays.state_dict["net.0.weight"].shape[1]  # (out, in)
    observation_space = spaces.Box(-np.inf, np.inf, (num_observations,), np.float32)
    action_space = spaces.Box(-1.0, 1.0, env_box.shape, np.float32)
    twin = build_ppo(config.ppo, observation_space, action_space, num_envs=config.envs, policy="mlp", device="cpu")
    policy, normalization = _load_twin(twin.policy, arrays)
    return DeterministicPolicy(policy, env_box, normalization)


def check_output_file(path: Path) -> None:
    """Refuse an output path that is a directory.

    Args:
        path: The file to write.

    Raises:
        ConfigError: If ``path`` is a directory.
    """
    if path.is_dir():
        raise ConfigError(
            f"--out {str(path)!r} is a directory; name the file to write, e.g. {str(path / 'policy.onnx')!r}."
        )
