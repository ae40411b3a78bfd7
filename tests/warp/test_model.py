"""The Warp Model base class: files, parameter updates, random actions, registration and errors."""

from __future__ import annotations

import numpy as np
import pytest
import warp as wp
from gymnasium import spaces
from warp_nn import nn

from gaussrl.models.warp import DeterministicMixin, GaussianMixin, Model

SPACE = spaces.Box(low=np.array([-1.0, 0.0], np.float32), high=np.array([1.0, 5.0], np.float32))


class Policy(GaussianMixin, Model):
    def __init__(self, register=True, lazy=False, **options):
        Model.__init__(self, observation_space=3, action_space=SPACE, device="cpu")
        GaussianMixin.__init__(self, **options)
        self.net = nn.Sequential(nn.LazyLinear(8) if lazy else nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 2))
        self.log_std_parameter = nn.Parameter(wp.zeros(2, dtype=wp.float32, device=self.device))
        if register:
            self.__post_init__()

    def compute(self, inputs, role):
        return self.net(inputs["observations"]), {"log_std": self.log_std_parameter.data}


def _obs(n=5, seed=0):
    return {"observations": wp.array(np.random.default_rng(seed).normal(size=(n, 3)), dtype=wp.float32, device="cpu")}


def _state(model):
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("suffix", [".safetensors", ".npz"])
def test_save_load_round_trip(tmp_path, suffix):
    source, target = Policy(), Policy()
    source.log_std_parameter.data.fill_(0.25)
    source.save(tmp_path / f"policy{suffix}")
    target.load(tmp_path / f"policy{suffix}")
    for key, value in _state(source).items():
        np.testing.assert_array_equal(_state(target)[key], value)
    assert [p.name for p in tmp_path.iterdir()] == [f"policy{suffix}"]  # no temporary file left behind


def test_load_of_another_architecture(tmp_path):
    np.savez(tmp_path / "other.npz", weight=np.zeros(3, np.float32))
    with pytest.raises(ValueError, match=r"load a file saved from the same architecture"):
        Policy().load(tmp_path / "other.npz")


def test_update_parameters_hard_and_soft():
    source, target = Policy(), Policy()
    before, wanted = _state(target), _state(source)
    target.update_parameters(source, polyak=0.25)
    for key in wanted:
        np.testing.assert_allclose(_state(target)[key], 0.75 * before[key] + 0.25 * wanted[key], rtol=1e-6, atol=1e-7)
    target.update_parameters(source)
    for key in wanted:
        np.testing.assert_array_equal(_state(target)[key], wanted[key])
    with pytest.raises(ValueError, match=r"polyak=1.5 is outside \[0, 1\]"):
        target.update_parameters(source, polyak=1.5)


def test_freeze_parameters():
    policy = Policy()
    policy.freeze_parameters()
    assert not any(p.requires_grad for p in policy.parameters())
    policy.freeze_parameters(False)
    assert all(p.requires_grad for p in policy.parameters())


def test_random_act_within_bounds_and_seeded():
    policy = Policy()
    policy.seed(3)
    actions, extra = policy.random_act(_obs(4000))
    values = actions.numpy().copy()
    assert extra == {} and values.shape == (4000, 2)
    assert np.all(values >= SPACE.low) and np.all(values < SPACE.high)
    np.testing.assert_allclose(values.mean(0), (SPACE.low + SPACE.high) / 2, atol=6 * 5 / np.sqrt(12 * 4000))
    policy.seed(3)
    np.testing.assert_array_equal(policy.random_act(_obs(4000))[0].numpy(), values)


def test_forgotten_post_init_is_made_by_act_and_lazy_layers_are_built():
    policy = Policy(register=False, lazy=True)
    policy.init_state_dict()
    assert "net.0.weight" in policy.state_dict() and policy.state_dict()["net.0.weight"].shape == (8, 3)
    actions, _ = policy.act(_obs())
    assert actions.shape == (5, 2)


def test_tape_gradient_through_the_network_and_reparameterized_sample():
    policy = Policy()
    policy.seed(0)
    tape = wp.Tape()
    with tape:
        actions, outputs = policy.act(_obs())
    tape.backward(grads={actions: wp.ones_like(actions, requires_grad=False)})
    mean = outputs["mean_actions"].numpy()
    # d(sum a)/d(log_std) = sum over rows of (a - mean), and the last bias gets one per row.
    np.testing.assert_allclose(policy.log_std_parameter.data.grad.numpy(), (actions.numpy() - mean).sum(0), rtol=1e-5)
    np.testing.assert_allclose(policy.state_dict()["net.2.bias"].grad.numpy()[:, 0], [5.0, 5.0], rtol=1e-6)
    tape.zero()


def test_model_alone_has_no_act_and_unknown_device():
    class Bare(Model):
        pass

    with pytest.raises(NotImplementedError, match=r"combine it with a mixin"):
        Bare(observation_space=3, action_space=2, device="cpu").act({})
    with pytest.raises(ValueError, match=r"device='tpu:0' is not a Warp device"):
        Bare(observation_space=3, action_space=2, device="tpu:0")


def test_deterministic_mixin_init_order_and_width():
    class Value(DeterministicMixin, Model):
        def __init__(self):
            Model.__init__(self, observation_space=3, action_space=SPACE, device="cpu")
            DeterministicMixin.__init__(self, clip_actions=True)

        def compute(self, inputs, role):
            return inputs["observations"], {}

    with pytest.raises(ValueError, match=r"clip_actions=True needs \(N, 2\)"):
        Value().act(_obs())

    class Early(DeterministicMixin, Model):
        def __init__(self):
            DeterministicMixin.__init__(self)

    with pytest.raises(TypeError, match=r"DeterministicMixin.__init__ ran before Model.__init__"):
        Early()
