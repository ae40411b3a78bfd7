"""Contract adapter for ``gaussrl.models.torch``."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from gaussrl.models.torch import DeterministicMixin, GaussianMixin, Model, gaussian_kl
from tests.contract.adapters.base import Backend


class _Policy(GaussianMixin, Model):
    def __init__(
        self,
        action_space: Any,
        state_dependent: bool,
        dtype: torch.dtype,
        log_std_size: int | None,
        omit_log_std: bool,
        **options: Any,
    ) -> None:
        size = action_space.shape[0] if hasattr(action_space, "shape") else int(action_space)
        obs = 2 * size if state_dependent else size
        Model.__init__(self, observation_space=obs, action_space=action_space, device="cpu")
        GaussianMixin.__init__(self, **options)
        self.state_dependent = state_dependent
        self.omit_log_std = omit_log_std
        self.log_std_parameter = nn.Parameter(torch.zeros(log_std_size or self.num_actions, dtype=dtype))
        self.roles: list[str] = []
        self.extras: dict[str, Any] = {}

    def compute(self, inputs, role):
        self.roles.append(role)
        obs = inputs["observations"]
        a = self.num_actions
        if self.omit_log_std:
            return obs[:, :a], {}
        log_std = obs[:, a:] if self.state_dependent else self.log_std_parameter
        return obs[:, :a], {"log_std": log_std, **self.extras}


def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().numpy()


class TorchBackend(Backend):
    name = "torch"

    def policy(
        self,
        action_space,
        *,
        state_dependent=False,
        dtype="float32",
        omit_log_std=False,
        log_std_size=None,
        extras=None,
        **options,
    ):
        policy = _Policy(action_space, state_dependent, getattr(torch, dtype), log_std_size, omit_log_std, **options)
        policy.extras = extras or {}
        return policy

    def _inputs(self, policy, mean, log_std, taken_actions):
        dtype = policy.log_std_parameter.dtype
        obs = torch.as_tensor(mean, dtype=dtype)
        if policy.state_dependent:
            obs = torch.cat([obs, torch.as_tensor(log_std, dtype=dtype)], dim=-1)
        else:
            with torch.no_grad():
                policy.log_std_parameter.copy_(torch.as_tensor(log_std, dtype=dtype))
        inputs = {"observations": obs}
        if taken_actions is not None:
            inputs["taken_actions"] = torch.as_tensor(taken_actions, dtype=dtype)
        return inputs

    def act(self, policy, mean, log_std, taken_actions=None, role=""):
        actions, outputs = policy.act(self._inputs(policy, mean, log_std, taken_actions), role=role)
        return _np(actions), {k: _np(v) for k, v in outputs.items()}

    def act_raw(self, policy, mean, log_std):
        return policy.act(self._inputs(policy, mean, log_std, None))

    def act_inputs(self, policy, inputs, role=""):
        actions, outputs = policy.act({k: torch.as_tensor(v) for k, v in inputs.items()}, role=role)
        return _np(actions), {k: _np(v) for k, v in outputs.items()}

    def entropy(self, policy, role=""):
        return _np(policy.get_entropy(role=role))

    def seed(self, policy, seed):
        torch.manual_seed(seed)

    def grads(self, policy, mean, log_std, of, taken_actions=None):
        inputs = self._inputs(policy, mean, log_std, taken_actions)
        obs = inputs["observations"].requires_grad_(True)
        policy.log_std_parameter.grad = None
        actions, outputs = policy.act(inputs, role="")
        values = {"log_prob": lambda: outputs["log_prob"], "actions": lambda: actions, "entropy": policy.get_entropy}
        sum(values[name]().sum() for name in of.split("+")).backward()
        a = policy.num_actions
        obs_grad = torch.zeros_like(obs) if obs.grad is None else obs.grad
        grad_log_std = obs_grad[:, a:] if policy.state_dependent else policy.log_std_parameter.grad
        if grad_log_std is None:
            grad_log_std = torch.zeros_like(policy.log_std_parameter)
        grads = {"mean": _np(obs_grad[:, :a]), "log_std": _np(grad_log_std)}
        return _np(actions), {k: _np(v) for k, v in outputs.items()}, grads

    def kl(self, mean_p, log_std_p, mean_q, log_std_q, reduction):
        t = [torch.as_tensor(x) for x in (mean_p, log_std_p, mean_q, log_std_q)]
        return _np(gaussian_kl(*t, reduction=reduction))

    def define_mixin_after_model(self):
        class Bad(Model, GaussianMixin):
            def compute(self, inputs, role):
                return inputs["observations"], {}

    def init_mixin_before_model(self, action_space):
        class Early(GaussianMixin, Model):
            def __init__(self):
                GaussianMixin.__init__(self)
                Model.__init__(self, observation_space=1, action_space=action_space)

        Early()

    def deterministic(self, action_space, x, *, clip_actions):
        class Value(DeterministicMixin, Model):
            def __init__(self):
                Model.__init__(self, observation_space=x.shape[-1], action_space=action_space, device="cpu")
                DeterministicMixin.__init__(self, clip_actions=clip_actions)

            def compute(self, inputs, role):
                return inputs["observations"], {}

        actions, _ = Value().act({"observations": torch.as_tensor(x)})
        return _np(actions)


ADAPTER = TorchBackend()
