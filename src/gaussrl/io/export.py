"""Explicit, deterministic export of a trained torch feed-forward policy: ``export_jit`` and ``export_onnx``.

Torch only. The exported module maps raw environment observations (N, num_observations) to
environment actions (N, A): it normalises the observations with the run's statistics, takes the
policy's mean action (after its squashing, as ``act()`` reports it), clips it to [-1, 1] and
rescales it onto the Box bounds, exactly as the trainer's deterministic evaluation does. Each
export is one self-contained file (the weights are inside it), written atomically.

This module reads the policy and the statistics it is given; it imports nothing from
``gaussrl.agents`` or ``gaussrl.trainer`` (``gaussrl export`` in the trainer puts them together).
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from typing import Any, NamedTuple, cast

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from gaussrl.core.atomic import write_atomic
from gaussrl.core.errors import MissingDependencyError, NotSupportedError
from gaussrl.models.torch import Model

ONNX_PACKAGES = ("onnx", "onnxscript")
"""What ``torch.onnx.export`` needs beside torch (the ``onnx`` extra also installs onnxruntime to run the file)."""


class ObservationNormalization(NamedTuple):
    """The observation statistics a policy was trained with: ``clamp((x - mean) / std, -clip, clip)``."""

    mean: torch.Tensor
    """Shape (num_observations,)."""
    std: torch.Tensor
    """Shape (num_observations,), positive."""
    clip: float
    """Bound of the normalised observations."""


class DeterministicPolicy(nn.Module):
    """Observations to environment actions, with no sampling.

    Args:
        policy: A feed-forward ``GaussianMixin`` model acting in [-1, 1]^A.
        env_action_space: The environment's Box action space.
        normalization: The run's observation statistics, or None.

    Raises:
        NotSupportedError: For recurrent policies (their hidden state is not part of the export).
    """

    obs_mean: torch.Tensor
    obs_std: torch.Tensor
    bounded: torch.Tensor
    center: torch.Tensor
    scale: torch.Tensor

    def __init__(
        self, policy: Model, env_action_space: spaces.Box, normalization: ObservationNormalization | None = None
    ) -> None:
        super().__init__()
        if policy.get_specification().get("rnn"):
            raise NotSupportedError(
                "exporting recurrent policies is not supported yet: the hidden state would have to become an "
                "input and output of the exported graph."
            )
        self.policy = policy
        # gaussrl's own model state (not a dependency's): whether act() squashes the mean with tanh.
        self.squash = cast(Any, policy)._gaussian.plan.squash != "none"
        size = policy.num_observations
        self.normalize = normalization is not None
        self.clip = float(normalization.clip) if normalization is not None else 0.0
        mean = normalization.mean if normalization is not None else torch.zeros(size)
        std = normalization.std if normalization is not None else torch.ones(size)
        low = np.asarray(env_action_space.low, dtype=np.float64).reshape(-1)
        high = np.asarray(env_action_space.high, dtype=np.float64).reshape(-1)
        bounded = np.isfinite(low) & np.isfinite(high)
        self.register_buffer("obs_mean", mean.detach().float().cpu().clone())
        self.register_buffer("obs_std", std.detach().float().cpu().clamp_min(1e-8))
        self.register_buffer("bounded", torch.as_tensor(bounded))
        self.register_buffer("center", torch.as_tensor(np.where(bounded, (high + low) / 2, 0.0), dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(np.where(bounded, (high - low) / 2, 1.0), dtype=torch.float32))

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        """Environment actions for raw observations.

        Args:
            observations: Shape (N, num_observations).

        Returns:
            Shape (N, A): clipped and rescaled on bounded dimensions, as they are on unbounded ones.
        """
        x = observations
        if self.normalize:
            x = ((x - self.obs_mean) / self.obs_std).clamp(-self.clip, self.clip)
        mean_actions, _ = self.policy.compute({"observations": x}, "policy")
        if self.squash:
            mean_actions = torch.tanh(mean_actions)
        rescaled = self.center + self.scale * mean_actions.clamp(-1.0, 1.0)
        return torch.where(self.bounded, rescaled, mean_actions)


def export_jit(module: DeterministicPolicy, path: str | os.PathLike[str]) -> None:
    """Trace the policy to TorchScript and write it atomically (load with ``torch.jit.load``).

    Args:
        module: The deterministic policy.
        path: Destination ``.pt`` file.
    """
    example = torch.zeros((1, module.policy.num_observations))
    traced = torch.jit.trace(module.eval().cpu(), example)  # type: ignore[no-untyped-call]
    write_atomic(path, lambda tmp: torch.jit.save(traced, str(tmp)))


def require_onnx() -> None:
    """Check that the packages ONNX export needs are installed.

    Raises:
        MissingDependencyError: Naming the missing packages and the extra that installs them.
    """
    missing = [name for name in ONNX_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingDependencyError(
            f"exporting to ONNX needs the packages {', '.join(ONNX_PACKAGES)} (missing: {', '.join(missing)}); "
            f'install them with pip install "gaussrl[onnx]", or export with --format torchscript.'
        )


def export_onnx(module: DeterministicPolicy, path: str | os.PathLike[str]) -> None:
    """Export the policy to one ONNX file (input ``observations``, output ``actions``, dynamic batch), atomically.

    The graph is built in memory and written with every weight inline, so the file is complete
    on its own: nothing is written beside it.

    Args:
        module: The deterministic policy.
        path: Destination ``.onnx`` file.

    Raises:
        MissingDependencyError: If onnx or onnxscript is not installed.
    """
    require_onnx()
    example = torch.zeros((1, module.policy.num_observations))
    with warnings.catch_warnings():  # torch's exporter warns about its own internals (FutureWarning)
        warnings.simplefilter("ignore", FutureWarning)
        program = torch.onnx.export(
            module.eval().cpu(),
            (example,),
            input_names=["observations"],
            output_names=["actions"],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            dynamo=True,
            verbose=False,
        )
    if program is None:  # only the legacy exporter returns None; dynamo=True always gives a program
        raise RuntimeError("torch.onnx.export returned no program with dynamo=True")
    data = program.model_proto.SerializeToString()
    write_atomic(path, lambda tmp: tmp.write_bytes(data))
