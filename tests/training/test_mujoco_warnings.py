"""MuJoCo's warnings go through Python's ``warnings``, once each, instead of MuJoCo's stderr lines and log file."""

from __future__ import annotations

import pytest

from gaussrl.envs import gymnasium as envs
from gaussrl.envs.gymnasium import MujocoWarning, make_vector_env, route_mujoco_warnings

mujoco = pytest.importorskip("mujoco", reason="MuJoCo is the gaussrl[mujoco] extra (gymnasium[mujoco])")


def test_a_mujoco_env_routes_each_warning_once_and_writes_no_log(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(envs, "MUJOCO_WARNED", set())
    make_vector_env("Hopper-v5", 2).close()
    handler = mujoco.get_mju_user_warning()
    with pytest.warns(MujocoWarning) as record:
        handler("a test message")
        handler("a test message")
        handler("another message")
    assert [str(w.message) for w in record] == ["MuJoCo: a test message", "MuJoCo: another message"]
    assert not (tmp_path / "MUJOCO_LOG.TXT").exists()


def test_other_environments_leave_mujoco_alone():
    assert route_mujoco_warnings("Pendulum-v1") is False
    assert route_mujoco_warnings("NoSuchEnvironment-v0") is False
    assert route_mujoco_warnings("Hopper-v5") is True
