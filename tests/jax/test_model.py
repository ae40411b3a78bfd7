"""JAX-specific behaviour: cloning, init order, keys, jit/grad, parameters and files."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces

pytest.importorskip("flax")

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from gaussrl.core import NotReadyError
from gaussrl.models.jax import DeterministicMixin, GaussianMixin, Model
from gaussrl.models.jax.functional import next_key_data

BOX = spaces.Box(low=-1.0, high=1.0, shape=(2,))


class Policy(GaussianMixin, Model):
    def __init__(self, observation_space, state_space, action_space, device=None, hidden=8, **options):
        Model.__init__(self, observation_space, state_space, action_space, device)
        GaussianMixin.__init__(self, **options)
        self.hidden = hidden

    @nn.compact
    def __call__(self, inputs, role):
        x = nn.tanh(nn.Dense(self.hidden)(inputs["observations"]))
        log_std = self.param("log_std", nn.initializers.constant(-0.5), (self.num_actions,))
        return nn.Dense(self.num_actions)(x), {"log_std": log_std}


class SetupPolicy(Policy):
    def setup(self):
        self.body = nn.Dense(self.hidden)
        self.head = nn.Dense(self.num_actions)
        self.log_std = self.param("log_std", nn.initializers.constant(-0.5), (self.num_actions,))

    def __call__(self, inputs, role):
        return self.head(nn.tanh(self.body(inputs["observations"]))), {"log_std": self.log_std}


class Value(DeterministicMixin, Model):
    def __init__(self, observation_space, state_space, action_space, device=None, clip_actions=False):
        Model.__init__(self, observation_space, state_space, action_space, device)
        DeterministicMixin.__init__(self, clip_actions=clip_actions)

    @nn.compact
    def __call__(self, inputs, role):
        return nn.Dense(1)(inputs["observations"]), {}


def _policy(cls=Policy, key=0, **options):
    policy = cls(3, None, BOX, **options)
    policy.init_state_dict(key=key)
    return policy


def _inputs(n=5, seed=0):
    return {"observations": jnp.asarray(np.random.default_rng(seed).normal(size=(n, 3)), jnp.float32)}


@pytest.mark.parametrize("cls", [Policy, SetupPolicy])
def test_constructor_options_survive_flax_cloning(cls):
    policy = _policy(cls, hidden=7, reduction="none", clip_actions=True)
    prefix = "Dense_0" if cls is Policy else "body"
    assert policy.state_dict.params["params"][prefix]["kernel"].shape == (3, 7)
    clone = policy.clone()
    assert clone.hidden == 7 and clone._gaussian.plan.spec == policy._gaussian.plan.spec
    _, outputs = policy.act(_inputs())
    assert outputs["log_prob"].shape == (5, 2)


def test_clone_rejects_field_updates():
    with pytest.raises(TypeError, match=r"can only update 'name'"):
        _policy().clone(hidden=3)


def test_spaces_give_sizes():
    policy = Policy(spaces.Box(-1, 1, (2, 3)), 4, BOX)
    assert (policy.num_observations, policy.num_states, policy.num_actions) == (6, 4, 2)


@pytest.mark.parametrize("method", ["act", "random_act"])
def test_act_before_init_state_dict(method):
    policy = Policy(3, None, BOX)
    with pytest.raises(NotReadyError, match=rf"{method}\(\) was called before init_state_dict\(\).*init_state_dict"):
        getattr(policy, method)(_inputs())


def test_deterministic_act_before_init_state_dict():
    with pytest.raises(NotReadyError, match=r"call model.init_state_dict|Call model.init_state_dict"):
        Value(3, None, 1).act(_inputs())


def test_deterministic_mixin_order_is_checked():
    with pytest.raises(TypeError, match=r"lists DeterministicMixin after Model"):

        class Bad(Model, DeterministicMixin):
            pass


def test_seed_reproduces_and_calls_are_independent():
    policy = _policy()
    policy.seed(3)
    first, _ = policy.act(_inputs(1000))
    second, _ = policy.act(_inputs(1000))
    policy.seed(3)
    again, _ = policy.act(_inputs(1000))
    np.testing.assert_array_equal(first, again)
    assert not np.any(np.asarray(first) == np.asarray(second))
    assert not np.array_equal(_policy(key=0).act(_inputs())[0], _policy(key=1).act(_inputs())[0])


def test_explicit_key_leaves_the_model_key_alone():
    policy = _policy()
    key = jax.random.key(9)
    a, _ = policy.act(_inputs(), key=key)
    b, _ = policy.act(_inputs(), key=key)
    np.testing.assert_array_equal(a, b)
    policy.seed(5)
    c, _ = policy.act(_inputs(), key=key)
    d, _ = policy.act(_inputs())
    policy.seed(5)
    e, _ = policy.act(_inputs())
    np.testing.assert_array_equal(a, c)
    np.testing.assert_array_equal(d, e)


def test_inputs_are_not_mutated():
    policy = _policy()
    inputs = {**_inputs(), "taken_actions": jnp.zeros((5, 2))}
    snapshot = {k: np.asarray(v).copy() for k, v in inputs.items()}
    keys = list(inputs)
    policy.act(inputs)
    assert list(inputs) == keys
    for k, v in snapshot.items():
        np.testing.assert_array_equal(inputs[k], v)


def test_act_under_jit_with_explicit_keys_differs_per_key():
    policy = _policy()
    params = policy.state_dict.params

    @jax.jit
    def sample(params, key):
        return policy.act(_inputs(), params=params, key=key)[0]

    a, b = sample(params, jax.random.key(0)), sample(params, jax.random.key(1))
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, sample(params, jax.random.key(0)))


def test_act_under_outer_jit_without_key_keeps_a_concrete_key():
    policy = _policy()
    jax.jit(lambda params: policy.act(_inputs(), params=params)[1]["log_prob"])(policy.state_dict.params)
    jax.jit(lambda inputs: policy.random_act(inputs)[0])(_inputs())
    assert not isinstance(policy._key.data, jax.core.Tracer)
    a, _ = policy.act(_inputs())
    b, _ = policy.act(_inputs())
    assert not np.array_equal(a, b)


def _sample(policy, inputs, key):
    mean, outputs = policy.apply(policy.state_dict.params, inputs, "")
    return mean + np.exp(outputs["log_std"]) * jax.random.normal(key, mean.shape)


def test_model_stream_samples_with_consecutive_keys_and_explicit_keys_are_split():
    policy, inputs = _policy(), _inputs()
    policy.seed(4)
    start = jax.random.key_data(jax.random.key(4, impl="philox4x32"))
    for step in range(2):
        words = start + np.array([0, step + 1], np.uint32)
        want = _sample(policy, inputs, jax.random.wrap_key_data(words, impl="philox4x32"))
        np.testing.assert_allclose(policy.act(inputs)[0], want, rtol=1e-6, atol=1e-6)
    key = jax.random.key(9)
    want = _sample(policy, inputs, jax.random.split(key)[1])
    np.testing.assert_allclose(policy.act(inputs, key=key)[0], want, rtol=1e-6, atol=1e-6)


def test_next_key_data_carries_into_the_word_before():
    words = jnp.array([[5, 7], [5, 0xFFFFFFFF], [0xFFFFFFFF, 0xFFFFFFFF]], jnp.uint32)
    got = np.stack([next_key_data(w) for w in words])
    np.testing.assert_array_equal(got, np.array([[5, 8], [6, 0], [0, 0]], np.uint32))
    np.testing.assert_array_equal(next_key_data(jnp.array([1, 2, 3, 0xFFFFFFFF], jnp.uint32)), [1, 2, 4, 0])


def test_get_entropy_reuses_the_entropy_of_act_once():
    policy = _policy()
    _, outputs = policy.act(_inputs())
    want = 0.5 + 0.5 * np.log(2 * np.pi) + np.log(np.asarray(outputs["stddev"], np.float64))
    first = policy.get_entropy(outputs["stddev"])
    second = policy.get_entropy(outputs["stddev"])
    assert first is not second
    for entropy in (first, second, policy.get_entropy(jnp.array(outputs["stddev"]))):
        np.testing.assert_allclose(entropy, want, rtol=1e-6, atol=1e-6)


def test_params_argument_is_used_and_differentiable():
    policy = _policy()
    params = policy.state_dict.params
    taken = {**_inputs(), "taken_actions": jnp.full((5, 2), 0.3)}
    shifted = jax.tree_util.tree_map(lambda p: p + 1.0, params)
    _, base = policy.act(taken)
    _, moved = policy.act(taken, params=shifted)
    assert not np.allclose(base["log_prob"], moved["log_prob"])

    def loss(params):
        return -jnp.mean(policy.act(taken, params=params)[1]["log_prob"])

    grads = jax.grad(loss)(params)
    assert np.abs(grads["params"]["log_std"]).sum() > 0
    optimizer = optax.adam(1e-2)
    state = optimizer.init(params)
    updates, _ = optimizer.update(grads, state, params)
    new_params = optax.apply_updates(params, updates)
    assert loss(new_params) < loss(params)


def test_freeze_parameters_stops_gradients():
    policy = _policy()
    taken = {**_inputs(), "taken_actions": jnp.full((5, 2), 0.3)}

    def loss(params):
        return jnp.sum(policy.act(taken, params=params)[1]["log_prob"])

    policy.freeze_parameters(True)
    frozen = jax.grad(loss)(policy.state_dict.params)
    assert all(np.all(g == 0) for g in jax.tree_util.tree_leaves(frozen))
    policy.freeze_parameters(False)
    assert any(np.any(g != 0) for g in jax.tree_util.tree_leaves(jax.grad(loss)(policy.state_dict.params)))


def test_update_parameters_hard_and_soft():
    source, target = _policy(key=1), _policy(key=2)
    before = target.state_dict.params
    target.update_parameters(source, polyak=0.25)
    jax.tree_util.tree_map(
        lambda t, s, b: np.testing.assert_allclose(t, 0.25 * s + 0.75 * b, rtol=1e-6),
        target.state_dict.params,
        source.state_dict.params,
        before,
    )
    target.update_parameters(source)
    jax.tree_util.tree_map(np.testing.assert_array_equal, target.state_dict.params, source.state_dict.params)


def test_update_parameters_errors():
    with pytest.raises(ValueError, match=r"polyak=1.5 is outside \[0, 1\]"):
        _policy().update_parameters(_policy(), polyak=1.5)
    with pytest.raises(ValueError, match=r"the parameters do not match this model's"):
        _policy().update_parameters(_policy(hidden=4))


def test_save_load_round_trip_is_msgpack_and_atomic(tmp_path):
    source, target = _policy(key=1), _policy(key=2)
    path = tmp_path / "policy.msgpack"
    source.save(path)
    assert not path.read_bytes().startswith(b"\x80")  # not a pickle
    assert [p.name for p in tmp_path.iterdir()] == ["policy.msgpack"]
    target.load(path)
    jax.tree_util.tree_map(np.testing.assert_array_equal, target.state_dict.params, source.state_dict.params)
    with pytest.raises(ValueError, match=r"load\(.*\): the parameters do not match"):
        _policy(hidden=4).load(path)


def test_random_act_within_bounds():
    actions, outputs = _policy().random_act(_inputs(1000))
    assert actions.shape == (1000, 2) and outputs == {}
    assert np.all(np.abs(actions) <= 1.0) and np.asarray(actions).std() > 0.4


def test_entropy_with_pre_tanh_adds_the_squash_term():
    policy = _policy(squash_actions="tanh", reduction="none")
    _, outputs = policy.act(_inputs())
    stddev = outputs["stddev"]
    np.testing.assert_allclose(stddev, np.exp(outputs["log_std"]), rtol=1e-6)
    base = policy.get_entropy(stddev)
    squashed = policy.get_entropy(stddev, pre_tanh=outputs["pre_tanh"])
    u = np.asarray(outputs["pre_tanh"], np.float64)
    np.testing.assert_allclose(squashed - base, np.log1p(-(np.tanh(u) ** 2)), rtol=1e-4, atol=1e-5)


def test_training_mode_reaches_the_network_and_retraces():
    class Mode(GaussianMixin, Model):
        def __init__(self):
            Model.__init__(self, 1, None, 1)
            GaussianMixin.__init__(self)

        def __call__(self, inputs, role):
            mean = inputs["observations"] + (1.0 if self.training else 0.0)
            return mean, {"log_std": jnp.full((1,), -30.0)}

    policy = Mode()
    policy.init_state_dict()
    assert float(policy.act({"observations": jnp.zeros((1, 1))})[1]["mean_actions"][0, 0]) == 0.0
    policy.enable_training_mode(True)
    assert float(policy.act({"observations": jnp.zeros((1, 1))})[1]["mean_actions"][0, 0]) == 1.0


def test_float64_stays_in_its_context():
    with jax.enable_x64(True):
        policy = Policy(3, None, BOX)
        policy.init_state_dict()
        params = jax.tree_util.tree_map(lambda p: p.astype(jnp.float64), policy.state_dict.params)
        inputs = {"observations": jnp.ones((2, 3), jnp.float64)}
        actions, outputs = policy.act(inputs, params=params)
        assert actions.dtype == jnp.float64 and outputs["log_prob"].dtype == jnp.float64
    assert not jax.config.jax_enable_x64


def test_deterministic_act_params_and_clip():
    value = Value(3, None, spaces.Box(-0.1, 0.1, (1,)), clip_actions=True)
    value.init_state_dict()
    out, _ = value.act(_inputs())
    assert np.all(np.abs(out) <= 0.1)
    zero = jax.tree_util.tree_map(jnp.zeros_like, value.state_dict.params)
    np.testing.assert_array_equal(value.act(_inputs(), params=zero)[0], 0.0)


def test_check_finite_runs_outside_the_compiled_call():
    policy = _policy(check_finite=True)
    bad = {"observations": jnp.full((2, 3), jnp.nan)}
    with pytest.raises(FloatingPointError, match=r"returned NaN or infinity in mean_actions"):
        policy.act(bad)
