"""Explicit, deterministic export of a trained feed-forward policy: ``export_jit`` and ``export_onnx``.

The exported module maps raw environment observations (N, num_observations) to environment
actions (N, A): it normalises the observations with the run's statistics, takes the policy's
mean action (``tanh`` of it for squashed policies), clips it to [-1, 1] and rescales it onto the
Box bounds, exactly as the trainer's deterministic evaluation does.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from gaussrl.agents.torch.memory import NORMALIZED_CLIP, RunningStandardScaler
from gaussrl.io.atomic import write_atomic
from gaussrl.models.torch import Model


class DeterministicPolicy(nn.Module):
    """Observations to environment actions, with no sampling.

    Args:
        policy: A feed-forward ``GaussianMixin`` model acting in [-1, 1]^A.
        env_action_space: The environment's Box action space.
        obs_scaler: The run's observation statistics, or None.

    Raises:
        NotImplementedError: For recurrent policies (their hidden state is not part of the export).
    """

    def __init__(
        self, policy: Model, env_action_space: spaces.Box, obs_scaler: RunningStandardScaler | None = None
    ) -> None:
        super().__init__()
        if policy.get_specification().get("rnn"):
            raise NotImplementedError(
                "exporting recurrent policies is not supported yet: the hidden state would have to become an "
                "input and output of the exported graph."
            )
        self.policy = policy
        self.squash = policy._gaussian.plan.squash != "none"
        size = policy.num_observations
        mean = obs_scaler.mean.float() if obs_scaler else torch.zeros(size)
        std = obs_scaler.var.sqrt().clamp_min(1e-8).float() if obs_scaler else torch.ones(size)
        self.normalize = obs_scaler is not None
        low = np.asarray(env_action_space.low, dtype=np.float64).reshape(-1)
        high = np.asarray(env_action_space.high, dtype=np.float64).reshape(-1)
        bounded = np.isfinite(low) & np.isfinite(high)
        self.register_buffer("obs_mean", mean.cpu())
        self.register_buffer("obs_std", std.cpu())
        self.register_buffer("center", torch.as_tensor(np.where(bounded, (high + low) / 2, 0.0), dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(np.where(bounded, (high - low) / 2, 1.0), dtype=torch.float32))

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        """Environment actions for raw observations.

        Args:
            observations: Shape (N, num_observations).

        Returns:
            Shape (N, A).
        """
        x = observations
        if self.normalize:
            x = ((x - self.obs_mean) / self.obs_std).clamp(-NORMALIZED_CLIP, NORMALIZED_CLIP)
        mean_actions, _ = self.policy.compute({"observations": x}, "policy")
        if self.squash:
            mean_actions = torch.tanh(mean_actions)
        return self.center + self.scale * mean_actions.clamp(-1.0, 1.0)


def export_jit(module: DeterministicPolicy, path: str | os.PathLike[str]) -> None:
    """Trace the policy to TorchScript and write it atomically (load with ``torch.jit.load``).

    Args:
        module: The deterministic policy.
        path: Destination ``.pt`` file.
    """
    example = torch.zeros((1, module.policy.num_observations))
    traced = torch.jit.trace(module.eval().cpu(), example)
    write_atomic(path, lambda tmp: torch.jit.save(traced, str(tmp)))


def export_onnx(module: DeterministicPolicy, path: str | os.PathLike[str]) -> None:
    """Export the policy to ONNX (input ``observations``, output ``actions``, dynamic batch), atomically.

    Args:
        module: The deterministic policy.
        path: Destination ``.onnx`` file.

    Raises:
        ImportError: If the ``onnx`` package is not installed.
    """
    if importlib.util.find_spec("onnx") is None:
        raise ImportError("export_onnx needs the onnx package: pip install onnx onnxscript")
    example = torch.zeros((1, module.policy.num_observations))

    def write(tmp: object) -> None:
        torch.onnx.export(
            module.eval().cpu(),
            (example,),
            str(tmp),
            input_names=["observations"],
            output_names=["actions"],
            dynamic_axes={"observations": {0: "batch"}, "actions": {0: "batch"}},
        )

    write_atomic(path, write)
