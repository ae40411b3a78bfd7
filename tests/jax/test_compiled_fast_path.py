"""What keeps a compiled gymnax run short: no torch on its path, one compiled initialisation, NumPy evaluation.

Each piece is checked against what it replaces: the Gymnasium evaluation against the Gymnasium
trainer's torch ``Evaluator``, the compiled initialisation against the models' own eager
``init_state_dict``, and the NumPy checkpoint against the checkpoint loader.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

jax = pytest.importorskip("jax")
pytest.importorskip("gymnax", reason="the compiled path needs gymnax (pip install 'gaussrl[gymnax]')")

import torch  # noqa: E402
from gymnasium import spaces  # noqa: E402

from gaussrl.agents.config import PPOConfig  # noqa: E402
from gaussrl.agents.jax import networks, ppo_compiled, ppo_core  # noqa: E402
from gaussrl.envs import gymnax as gymnax_envs  # noqa: E402
from gaussrl.trainer.compiled_state import gymnasium_returns  # noqa: E402
from gaussrl.trainer.evaluate import EVAL_SEED_OFFSET, Evaluator  # noqa: E402
from tests.jax.conftest import run_script  # noqa: E402

WEIGHTS = np.array([[0.7], [-0.4], [0.25]])


class _LinearAgent:
    """A fixed linear policy seen through the torch trainer's ``Agent`` evaluation methods."""

    def act_eval(self, observations, states, *, deterministic=True):
        return torch.as_tensor(np.tanh(observations.numpy() @ WEIGHTS) * 1.3, dtype=torch.float32), states

    def eval_states(self, batch):
        return []


def test_gymnasium_returns_equal_the_gymnasium_trainers_evaluation():
    # Same initial states, same action clipping and rescaling (the 1.3 pushes actions past the bound).
    evaluator = Evaluator("Pendulum-v1", 3, seed=5)
    try:
        want = evaluator.run(_LinearAgent(), deterministic=True)
    finally:
        evaluator.close()
    got = gymnasium_returns("Pendulum-v1", lambda x: np.tanh(x @ WEIGHTS) * 1.3, 3, 5 + EVAL_SEED_OFFSET)
    assert np.all(got < 0) and len(set(got.tolist())) == 3
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-4)


def test_init_run_equals_eager_initialisation():
    config = PPOConfig(hidden_sizes=(8, 8))
    env = gymnax_envs.make("gymnax/Pendulum-v1", 4)

    def models():
        box = spaces.Box(-1.0, 1.0, (1,), np.float32)
        return ppo_core.PPOModels(
            networks.GaussianMLPPolicy(3, box, hidden_sizes=(8, 8)), networks.ValueMLP(3, hidden_sizes=(8, 8))
        )

    compiled_models = models()
    carry = ppo_compiled.init_run(compiled_models, config, env, 7)
    eager = models()
    eager.policy.init_state_dict(role="policy", key=7)
    eager.value.init_state_dict(role="value", key=8)
    want = ppo_compiled.init_carry(eager, config, env, 7)
    got_leaves, want_leaves = jax.tree_util.tree_leaves(carry), jax.tree_util.tree_leaves(want)
    assert len(got_leaves) == len(want_leaves)
    for got, expected in zip(got_leaves, want_leaves, strict=True):
        np.testing.assert_allclose(np.asarray(got), np.asarray(expected), rtol=1e-5, atol=1e-6)
    for model, role in ((compiled_models.policy, "policy"), (compiled_models.value, "value")):
        for a, b in zip(
            jax.tree_util.tree_leaves(model.state_dict.params),
            jax.tree_util.tree_leaves(carry.ppo.params[role]),
            strict=True,
        ):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    observations = np.zeros((2, 3), np.float32)
    actions, _ = compiled_models.policy.act({"observations": observations}, role="policy")  # the models are ready
    assert actions.shape == (2, 1)


NO_TORCH = textwrap.dedent(
    """
    import sys
    import numpy as np
    from gaussrl.trainer import cli
    from gaussrl.trainer.compiled import build_run
    from gaussrl.trainer.compiled_state import carry_to_tensors
    from gaussrl.io.checkpoint import save_checkpoint

    config = cli.parse(["train", "--backend", "jax", "--env", "gymnax/Pendulum-v1", "--num-envs", "4",
                        "--ppo.hidden-sizes", "4", "--out", sys.argv[1]])
    assert config.tensorboard is False  # the gymnax preset
    models, env, carry = build_run(config)
    tensors = carry_to_tensors(carry)
    save_checkpoint(sys.argv[1], 7, {"carry": tensors, "steps": 7}, {"backend": "jax"})
    loaded = sorted(name for name in sys.modules if name == "torch" or name.startswith("torch."))
    assert not loaded, loaded[:5]

    from gaussrl.io.checkpoint import load_checkpoint
    state, meta = load_checkpoint(sys.argv[1])
    assert state["steps"] == 7 and meta == {"backend": "jax"}
    for name, array in tensors.items():
        np.testing.assert_array_equal(state["carry"][name].numpy(), array)
    print("OK")
    """
)


def test_the_compiled_path_imports_no_torch(tmp_path):
    # Parsing, building the run (gymnax, the models, the carry) and a checkpoint of NumPy arrays: no torch.
    assert run_script(tmp_path, NO_TORCH, tmp_path / "checkpoints") == "OK"
