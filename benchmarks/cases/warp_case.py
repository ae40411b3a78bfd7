"""gaussrl's Warp GaussianMixin against the bare warp-nn network (tanh hidden layers), on Warp's default device."""

from __future__ import annotations

import numpy as np
import warp as wp
from warp_nn import nn

from benchmarks.cases.common import ACTIONS, LOG_STD, OBSERVATIONS, observations, weights
from gaussrl.models.warp import GaussianMixin, Model

wp.config.quiet = True


def warp_mlp(seed: int = 0, device: str | None = None) -> nn.Module:
    """The benchmark's MLP 17 -> 64 -> 64 -> 6 (tanh, tanh, linear) as warp-nn layers, with the shared weights."""
    layers: list[nn.Module] = []
    for index, (w, b) in enumerate(weights(seed)):
        linear = nn.Linear(*w.shape)
        linear.load_state_dict({"weight": np.ascontiguousarray(w.T), "bias": b[:, None]})
        layers += [linear, nn.Tanh()] if index < 2 else [linear]
    return nn.Sequential(*layers).to(wp.get_device(device))


class Policy(GaussianMixin, Model):
    def __init__(self, net: nn.Module, device: str | None = None):
        Model.__init__(self, observation_space=OBSERVATIONS, action_space=ACTIONS, device=device)
        GaussianMixin.__init__(self)
        self.net = net
        self.log_std_parameter = nn.Parameter(wp.array(LOG_STD, dtype=wp.float32, device=self.device))
        self.__post_init__()

    def compute(self, inputs, role):
        return self.net(inputs["observations"]), {"log_std": self.log_std_parameter.data}


def make_case(batch: int, seed: int = 0, device: str | None = None):
    """(run_act, run_forward): act() + get_entropy(), and the bare warp-nn forward; both synchronize the device."""
    policy = Policy(warp_mlp(seed, device), device)
    policy.seed(seed)
    x = wp.array(observations(batch), dtype=wp.float32, device=policy.device)
    inputs = {"observations": x}

    def run_act():
        actions, outputs = policy.act(inputs, role="policy")
        entropy = policy.get_entropy(role="policy")
        wp.synchronize_device(policy.device)
        return actions, outputs["log_prob"], entropy

    def run_forward():
        out = policy.net(x)
        wp.synchronize_device(policy.device)
        return out

    return run_act, run_forward


def make_training_case(batch: int, seed: int = 0, device: str | None = None):
    """(run_train, run_forward_backward): act with taken_actions + tape backward of log-prob and entropy."""
    policy = Policy(warp_mlp(seed, device), device)
    x = wp.array(observations(batch), dtype=wp.float32, device=policy.device)
    taken = wp.array(np.random.default_rng(seed).normal(size=(batch, ACTIONS)), dtype=wp.float32, device=policy.device)
    inputs = {"observations": x, "taken_actions": taken}

    def run_train():
        tape = wp.Tape()
        with tape:
            _, outputs = policy.act(inputs, role="policy")
        entropy = policy.get_entropy(role="policy")
        tape.backward(grads={outputs["log_prob"]: wp.ones_like(outputs["log_prob"]), entropy: wp.ones_like(entropy)})
        tape.zero()
        wp.synchronize_device(policy.device)

    def run_forward_backward():
        tape = wp.Tape()
        with tape:
            out = policy.net(x)
        tape.backward(grads={out: wp.ones_like(out)})
        tape.zero()
        wp.synchronize_device(policy.device)

    return run_train, run_forward_backward
