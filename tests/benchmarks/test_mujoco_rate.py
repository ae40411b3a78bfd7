"""benchmarks/mujoco_rate.py: gaussrl's settings land in SB3's models as meant; what SB3 cannot express is listed."""

from __future__ import annotations

import dataclasses
import math

import pytest
from benchmarks.mujoco_rate import gaussrl_rate, sb3_model, sb3_ppo, sb3_rate, sb3_sac, settings

from gaussrl.agents.config import PPOConfig, SACConfig
from gaussrl.trainer.loop import TrainConfig

sb3 = pytest.importorskip(
    "stable_baselines3", reason="Stable-Baselines3 is in the bench extra: pip install -e .[bench]"
)
torch = pytest.importorskip("torch")

ENV = "Pendulum-v1"  # no MuJoCo needed: the mapping does not depend on the task


def _linears(module):
    return [m for m in module.modules() if isinstance(m, torch.nn.Linear)]


def test_ppo_settings_reach_sb3():
    ppo = PPOConfig(
        rollouts=256,
        learning_epochs=7,
        mini_batches=8,
        discount_factor=0.98,
        gae_lambda=0.9,
        learning_rate=3e-4,
        learning_rate_scheduler="linear",
        ratio_clip=0.15,
        entropy_loss_scale=0.01,
        value_loss_scale=0.7,
        grad_norm_clip=0.8,
        hidden_sizes=(32, 16),
        initial_log_std=-0.5,
        value_normalization=False,
    )
    train = TrainConfig(env=ENV, num_envs=2, ppo=ppo)
    mapping = sb3_ppo(train)
    assert mapping.unmatched == []
    model = sb3_model("ppo", ENV, mapping)
    assert (model.n_steps, model.batch_size, model.n_epochs, model.n_envs) == (256, 64, 7, 2)
    hyper = (model.gamma, model.gae_lambda, model.ent_coef, model.vf_coef, model.max_grad_norm)
    assert hyper == (0.98, 0.9, 0.01, 0.7, 0.8)
    assert model.clip_range(1.0) == 0.15 and model.clip_range_vf is None
    assert math.isclose(model.lr_schedule(1.0), 3e-4) and math.isclose(model.lr_schedule(0.25), 0.75e-4)
    policy = model.policy
    assert [m.out_features for m in _linears(policy.mlp_extractor.policy_net)] == [32, 16]
    assert [m.out_features for m in _linears(policy.mlp_extractor.value_net)] == [32, 16]
    assert any(isinstance(m, torch.nn.Tanh) for m in policy.mlp_extractor.policy_net.modules())
    assert torch.equal(policy.log_std.detach(), torch.full((1,), -0.5))
    normalizer = model.get_env()
    assert normalizer.norm_obs and not normalizer.norm_reward and normalizer.clip_obs == 5.0
    model.get_env().close()


def test_ppo_settings_sb3_cannot_express_are_listed():
    ppo = PPOConfig(kl_threshold=0.05, time_limit_bootstrap=False, reward_scale=0.1, observation_normalization=False)
    mapping = sb3_ppo(TrainConfig(env=ENV, ppo=ppo))
    text = "\n".join(mapping.unmatched)
    assert "learning_rate_scheduler='kl_adaptive' (target KL 0.008): SB3 has no KL-adaptive rate" in text
    assert "value_normalization=True: SB3 learns unnormalised values" in text
    assert "kl_threshold=0.05" in text and "time_limit_bootstrap=False" in text and "reward_scale=0.1" in text
    assert mapping.kwargs["target_kl"] == 0.05 and mapping.normalize is None
    assert mapping.kwargs["learning_rate"] == 1e-3  # kl_adaptive: SB3 keeps the initial rate


def test_sac_settings_reach_sb3():
    sac = SACConfig(
        batch_size=64,
        memory_size=5000,
        polyak=0.01,
        discount_factor=0.97,
        actor_learning_rate=3e-4,
        critic_learning_rate=3e-4,
        entropy_learning_rate=3e-4,
        initial_entropy_value=0.5,
        random_timesteps=300,
        learning_starts=300,
        gradient_steps=2,
        hidden_sizes=(48, 24),
    )
    mapping = sb3_sac(TrainConfig(env=ENV, algo="sac", sac=sac))
    assert mapping.unmatched == [] and mapping.num_envs == 1 and mapping.normalize is None
    model = sb3_model("sac", ENV, mapping)
    assert (model.buffer_size, model.batch_size, model.tau, model.gamma) == (5000, 64, 0.01, 0.97)
    assert (model.learning_starts, model.gradient_steps, model.train_freq.frequency) == (300, 2, 1)
    assert math.isclose(model.lr_schedule(1.0), 3e-4)
    assert math.isclose(float(model.log_ent_coef.detach().exp()), 0.5, rel_tol=1e-6) and model.target_entropy == -1.0
    assert [m.out_features for m in _linears(model.actor.latent_pi)] == [48, 24]
    assert [m.out_features for m in _linears(model.critic.q_networks[0])] == [48, 24, 1]
    assert any(isinstance(m, torch.nn.ReLU) for m in model.actor.latent_pi.modules())
    model.get_env().close()


def test_sac_settings_sb3_cannot_express_are_listed():
    sac = SACConfig(critic_learning_rate=2e-3, random_timesteps=10, learning_starts=20, grad_norm_clip=1.0)
    text = "\n".join(sb3_sac(TrainConfig(env=ENV, algo="sac", sac=sac)).unmatched)
    assert "critic_learning_rate=0.002: SB3 uses one rate, actor_learning_rate=0.001" in text
    assert "random_timesteps=10: SB3 acts at random until learning_starts=20" in text
    assert "grad_norm_clip=1.0: SB3's SAC does not clip gradients" in text


def test_settings_are_gaussrl_train_s_with_extra_options():
    train = settings("sac", ENV, ("--sac.batch-size", "64"))
    assert train.algo == "sac" and train.envs == 1 and train.sac.batch_size == 64
    assert dataclasses.replace(train.sac, batch_size=256) == SACConfig()
    assert settings("ppo", ENV).ppo.discount_factor == 0.95  # Pendulum's preset


def test_both_rates_run_past_learning_starts():
    extra = ("--sac.learning-starts", "40", "--sac.random-timesteps", "40", "--sac.batch-size", "16")
    assert gaussrl_rate("sac", ENV, 40, 10, extra=extra) > 0
    mapping = sb3_sac(settings("sac", ENV, extra))
    assert mapping.kwargs["learning_starts"] == 40
    assert sb3_rate("sac", ENV, mapping, 40, 10) > 0
