"""Contract adapter for ``gaussrl.models.warp`` (CPU device).

``has_distribution_state`` is True: ``get_entropy(stddev=None)`` reads the last ``act()``
(and raises ``NotReadyError`` before one); passing ``stddev`` as in the JAX signature is
also supported, and tested in ``tests/warp``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import warp as wp
from warp_nn.modules.parameter import Parameter

from gaussrl.models.warp import DeterministicMixin, GaussianMixin, Model, gaussian_kl
from tests.contract.adapters.base import Backend

wp.config.quiet = True
DEVICE = "cpu"


class _Policy(GaussianMixin, Model):
    def __init__(
        self,
        action_space: Any,
        state_dependent: bool,
        dtype: Any,
        log_std_size: int | None,
        omit_log_std: bool,
        **options: Any,
    ) -> None:
        size = action_space.shape[0] if hasattr(action_space, "shape") else int(action_space)
        obs = 2 * size if state_dependent else size
        Model.__init__(self, observation_space=obs, action_space=action_space, device=DEVICE)
        GaussianMixin.__init__(self, **options)
        self.state_dependent = state_dependent
        self.omit_log_std = omit_log_std
        self.dtype = dtype
        self.log_std_parameter = Parameter(wp.zeros(log_std_size or self.num_actions, dtype=dtype, device=self.device))
        self.roles: list[str] = []
        self.extras: dict[str, Any] = {}
        self.__post_init__()

    def compute(self, inputs, role):
        self.roles.append(role)
        obs = inputs["observations"]
        a = self.num_actions
        if self.omit_log_std:
            return obs[:, :a], {}
        log_std = obs[:, a:] if self.state_dependent else self.log_std_parameter.data
        return obs[:, :a], {"log_std": log_std, **self.extras}


def _np(x: wp.array) -> np.ndarray:
    return x.numpy().copy()


class WarpBackend(Backend):
    name = "warp"
    has_distribution_state = True

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
        policy = _Policy(action_space, state_dependent, getattr(wp, dtype), log_std_size, omit_log_std, **options)
        policy.extras = extras or {}
        return policy

    def _inputs(self, policy, mean, log_std, taken_actions, requires_grad=False):
        dtype = wp.dtype_to_numpy(policy.dtype)
        obs = np.asarray(mean, dtype)
        if policy.state_dependent:
            obs = np.concatenate([obs, np.asarray(log_std, dtype)], axis=-1)
        else:
            policy.log_std_parameter.data.assign(np.asarray(log_std, dtype))
        inputs = {"observations": wp.array(obs, dtype=policy.dtype, device=DEVICE, requires_grad=requires_grad)}
        if taken_actions is not None:
            inputs["taken_actions"] = wp.array(np.asarray(taken_actions, dtype), dtype=policy.dtype, device=DEVICE)
        return inputs

    def act(self, policy, mean, log_std, taken_actions=None, role=""):
        actions, outputs = policy.act(self._inputs(policy, mean, log_std, taken_actions), role=role)
        return _np(actions), {k: _np(v) for k, v in outputs.items()}

    def act_raw(self, policy, mean, log_std):
        return policy.act(self._inputs(policy, mean, log_std, None))

    def act_inputs(self, policy, inputs, role=""):
        arrays = {k: wp.array(v, dtype=wp.dtype_from_numpy(v.dtype), device=DEVICE) for k, v in inputs.items()}
        actions, outputs = policy.act(arrays, role=role)
        return _np(actions), {k: _np(v) for k, v in outputs.items()}

    def entropy(self, policy, role=""):
        return _np(policy.get_entropy(role=role))

    def seed(self, policy, seed):
        policy.seed(seed)

    def grads(self, policy, mean, log_std, of, taken_actions=None):
        inputs = self._inputs(policy, mean, log_std, taken_actions, requires_grad=True)
        obs, parameter = inputs["observations"], policy.log_std_parameter.data
        parameter.grad.zero_()
        tape = wp.Tape()
        with tape:
            actions, outputs = policy.act(inputs, role="")
        values = {"log_prob": outputs["log_prob"], "actions": actions, "entropy": policy.get_entropy()}
        chosen = [values[name] for name in of.split("+")]
        tape.backward(grads={value: wp.ones_like(value, requires_grad=False) for value in chosen})
        a = policy.num_actions
        obs_grad = _np(obs.grad)
        grad_log_std = obs_grad[:, a:] if policy.state_dependent else _np(parameter.grad)
        grads = {"mean": obs_grad[:, :a], "log_std": grad_log_std}
        result = _np(actions), {k: _np(v) for k, v in outputs.items()}, grads
        tape.zero()
        return result

    def kl(self, mean_p, log_std_p, mean_q, log_std_q, reduction):
        arrays = [wp.array(x, dtype=wp.float32, device=DEVICE) for x in (mean_p, log_std_p, mean_q, log_std_q)]
        return _np(gaussian_kl(*arrays, reduction=reduction))

    def define_mixin_after_model(self):
        class Bad(Model, GaussianMixin):
            def compute(self, inputs, role):
                return inputs["observations"], {}

    def init_mixin_before_model(self, action_space):
        class Early(GaussianMixin, Model):
            def __init__(self):
                GaussianMixin.__init__(self)
                Model.__init__(self, observation_space=1, action_space=action_space, device=DEVICE)

        Early()

    def deterministic(self, action_space, x, *, clip_actions):
        class Value(DeterministicMixin, Model):
            def __init__(self):
                Model.__init__(self, observation_space=x.shape[-1], action_space=action_space, device=DEVICE)
                DeterministicMixin.__init__(self, clip_actions=clip_actions)
                self.__post_init__()

            def compute(self, inputs, role):
                return inputs["observations"], {}

        actions, _ = Value().act({"observations": wp.array(x, dtype=wp.float32, device=DEVICE)})
        return _np(actions)


ADAPTER = WarpBackend()
