"""The torch Model base class and torch-only parts of GaussianMixin (distribution(), files)."""

from __future__ import annotations

import pickle

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

from gaussrl.core import NotReadyError
from gaussrl.models.torch import DeterministicMixin, GaussianMixin, Model

OBS = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
ACT = gym.spaces.Box(np.array([-1.0, 0.0], np.float32), np.array([1.0, 2.0], np.float32))


class Policy(GaussianMixin, Model):
    def __init__(self, **options):
        Model.__init__(self, observation_space=OBS, action_space=ACT, device="cpu")
        GaussianMixin.__init__(self, **options)
        self.net = nn.Linear(3, 2)
        self.log_std_parameter = nn.Parameter(torch.full((2,), -0.5))

    def compute(self, inputs, role):
        return self.net(inputs["observations"]), {"log_std": self.log_std_parameter}


def test_distribution_is_the_last_calls_normal():
    policy = Policy()
    with pytest.raises(NotReadyError, match=r"distribution\(\) was called before any act\(\)"):
        policy.distribution()
    observations = torch.rand(5, 3)
    actions, outputs = policy.act({"observations": observations}, role="policy")
    distribution = policy.distribution(role="policy")
    assert isinstance(distribution, torch.distributions.Normal)
    torch.testing.assert_close(distribution.loc, policy.net(observations))
    torch.testing.assert_close(distribution.scale, torch.full((5, 2), np.exp(-0.5)))
    torch.testing.assert_close(distribution.log_prob(actions).sum(-1, keepdim=True), outputs["log_prob"])


def test_using_the_mixin_changes_no_global_state():
    before = torch.distributions.Distribution._validate_args
    policy = Policy()
    policy.act({"observations": torch.rand(2, 3)})
    policy.distribution()
    assert torch.distributions.Distribution._validate_args == before
    with pytest.raises(ValueError):
        torch.distributions.Normal(torch.zeros(1), torch.full((1,), -1.0))


def test_forward_is_act():
    policy = Policy()
    torch.manual_seed(0)
    a1, o1 = policy({"observations": torch.rand(4, 3)}, role="policy")
    torch.manual_seed(0)
    a2, o2 = policy.act({"observations": torch.rand(4, 3)}, role="policy")
    torch.testing.assert_close(a1, a2)
    torch.testing.assert_close(o1["log_prob"], o2["log_prob"])


def test_model_without_mixin_has_no_act():
    class Bare(Model):
        pass

    with pytest.raises(NotImplementedError, match=r"combine it with a mixin"):
        Bare(observation_space=OBS, action_space=ACT).act({"observations": torch.zeros(1, 3)})


def test_sizes_and_device():
    policy = Policy()
    assert (policy.num_observations, policy.num_states, policy.num_actions) == (3, 0, 2)
    assert policy.device == torch.device("cpu")


def test_random_act_stays_in_bounds():
    actions, outputs = Policy().random_act({"observations": torch.zeros(1000, 3)})
    assert actions.shape == (1000, 2) and outputs == {}
    assert actions[:, 0].min() >= -1 and actions[:, 0].max() <= 1 and actions[:, 1].min() >= 0
    assert actions[:, 1].max() > 1.9 and actions[:, 1].min() < 0.1


def test_save_and_load_round_trip(tmp_path):
    policy, other = Policy(), Policy()
    policy.save(tmp_path / "policy.safetensors")
    other.load(tmp_path / "policy.safetensors")
    for a, b in zip(policy.state_dict().values(), other.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
    assert [p.name for p in tmp_path.iterdir()] == ["policy.safetensors"]


def test_load_never_unpickles_code(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("code ran",))

    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"net.weight": Payload()}, protocol=2))
    with pytest.raises(pickle.UnpicklingError):
        Policy().load(path)


def test_update_parameters_hard_and_polyak():
    target, source = Policy(), Policy()
    start = target.net.weight.detach().clone()
    target.update_parameters(source, polyak=0.25)
    torch.testing.assert_close(target.net.weight, 0.75 * start + 0.25 * source.net.weight)
    target.update_parameters(source)
    torch.testing.assert_close(target.net.weight, source.net.weight)
    with pytest.raises(ValueError, match=r"polyak=1.5 is outside \[0, 1\]"):
        target.update_parameters(source, polyak=1.5)


def test_initialisers_from_the_allow_list():
    policy = Policy()
    policy.init_weights("constant_", 0.5)
    policy.init_biases()
    assert torch.all(policy.net.weight == 0.5) and torch.all(policy.net.bias == 0.0)
    policy.init_parameters("ones_")
    assert torch.all(policy.log_std_parameter == 1.0)
    with pytest.raises(ValueError, match=r"unknown initialiser 'os.system'; expected one of"):
        policy.init_weights("os.system")


def test_freeze_and_training_mode():
    policy = Policy()
    policy.freeze_parameters()
    assert not any(p.requires_grad for p in policy.parameters())
    policy.freeze_parameters(False)
    assert all(p.requires_grad for p in policy.parameters())
    policy.enable_training_mode(False)
    assert not policy.training


def test_init_state_dict_materialises_lazy_layers():
    class Lazy(DeterministicMixin, Model):
        def __init__(self):
            Model.__init__(self, observation_space=OBS, action_space=1, device="cpu")
            DeterministicMixin.__init__(self)
            self.net = nn.LazyLinear(1)

        def compute(self, inputs, role):
            return self.net(inputs["observations"]), {}

    model = Lazy()
    model.init_state_dict(role="value")
    assert model.net.weight.shape == (1, 3)


def test_deterministic_mixin_order_is_checked_too():
    with pytest.raises(TypeError, match=r"lists DeterministicMixin after Model"):

        class Bad(Model, DeterministicMixin):
            pass


def test_squashed_distribution_and_kl():
    policy = Policy(squash_actions=True)
    _, outputs = policy.act({"observations": torch.rand(6, 3)})
    distribution = policy.distribution()
    kl = policy.get_kl_divergence(distribution.loc.detach() + 0.1, torch.full((2,), -0.4))
    assert kl.shape == (6, 1) and torch.all(kl > 0)
    assert torch.all(outputs["mean_actions"][:, 1] > 0)
