"""The CLI prints gaussrl's own errors as one line (exit 2) and lets every other exception show its traceback."""

from __future__ import annotations

import pytest

from gaussrl.agents.config import PPOConfig, SACConfig
from gaussrl.core.errors import ConfigError, ConfigTypeError, GaussrlError
from gaussrl.trainer import cli
from gaussrl.trainer.cli import main
from gaussrl.trainer.config import MAX_SEED, MAX_THREADS, check_device
from gaussrl.trainer.loop import TrainConfig


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threads": 100_000}, rf"threads=100000 \(--threads\) must be an integer in \[1, {MAX_THREADS}\]"),
        ({"seed": -1}, rf"seed=-1 \(--seed\) must be an integer in \[0, {MAX_SEED}\]"),
        ({"seed": 2**64}, r"seed=18446744073709551616 \(--seed\) must be an integer"),
        ({"device": "nonsense"}, r"device='nonsense' \(--device\) is not a torch device; use cpu, cuda or cuda:N"),
        ({"eval_interval": -1}, r"eval_interval=-1 must be >= 0"),
        ({"algo": "sac", "policy": "gru"}, r"policy='gru' is for PPO"),
    ],
)
def test_train_config_raises_config_error(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**kwargs)


def test_agent_configs_raise_config_error():
    with pytest.raises(ConfigError, match=r"ratio_clip=2 is outside \(0.0, 1.0\)"):
        PPOConfig(ratio_clip=2)
    with pytest.raises(ConfigError, match=r"batch_size=10 exceeds memory_size=5"):
        SACConfig(batch_size=10, memory_size=5)
    with pytest.raises(ConfigTypeError, match=r"learn_entropy=1 must be True or False"):
        SACConfig(learn_entropy=1)  # type: ignore[arg-type]
    assert issubclass(ConfigError, ValueError) and issubclass(ConfigTypeError, TypeError)


def test_cuda_without_cuda(monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    with pytest.raises(
        ConfigError, match=r"device='cuda' \(--device\) is not available: this machine has 0 usable CUDA"
    ):
        check_device("cuda")
    check_device("cpu")


def _one_line_error(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("gaussrl: error: ") and err.count("\n") == 1, err
    return err


def test_gaussrl_errors_print_one_line(monkeypatch, capsys):
    def fail(command):
        raise ConfigError("threads=3 is wrong; use --threads 1.")

    monkeypatch.setattr(cli, "_run", fail)
    assert "threads=3 is wrong; use --threads 1." in _one_line_error(capsys, ["eval", "somewhere"])


def test_other_exceptions_keep_their_traceback(monkeypatch):
    def bug(command):
        raise ValueError("a bug in gaussrl")  # a built-in error, not a GaussrlError: not the user's to fix

    monkeypatch.setattr(cli, "_run", bug)
    with pytest.raises(ValueError, match="a bug in gaussrl"):
        main(["eval", "somewhere"])
    assert cli.USER_ERRORS == (GaussrlError,)


def test_option_errors_at_parse_time_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--threads", "100000"])
    assert exit_info.value.code == 2
    assert "--threads" in capsys.readouterr().err


def test_unknown_env_module(capsys, tmp_path):
    err = _one_line_error(capsys, ["train", "--env", "nosuchmodule:Id", "--out", str(tmp_path / "r"), "--no-progress"])
    assert "cannot make environment 'nosuchmodule:Id'" in err and "nosuchmodule" in err


def test_plot_without_metrics(capsys, tmp_path):
    err = _one_line_error(capsys, ["plot", str(tmp_path)])
    assert "no metrics in" in err and "expected a metrics.jsonl written by gaussrl train" in err
