"""``gaussrl plot``: the curves read from fabricated run directories, the figures written, the errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from gaussrl.core.errors import ConfigError, MissingRunFileError
from gaussrl.trainer.cli import main
from gaussrl.trainer.plot import eval_curve, parse_reference, plot_runs, run_labels

PNG = b"\x89PNG\r\n\x1a\n"


def fake_run(path, seed, evals, *, episodes=((1000, -50.0),)):
    """A run directory with config.json and metrics.jsonl holding these episode and eval records."""
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"algo": "ppo", "env": "HalfCheetah-v5", "seed": seed}))
    lines = [{"kind": "episode", "step": s, "return": r, "length": 1000.0} for s, r in episodes]
    lines += [{"kind": "update", "step": 2048, "policy_loss": 0.1}]
    lines += [{"kind": "eval", "step": s, "return_mean": m, "return_std": sd} for s, m, sd in evals]
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    return path


def test_eval_curve_is_what_metrics_jsonl_says(tmp_path):
    run = fake_run(tmp_path / "r", 0, [(10_000, -3.5, 1.25), (20_000, None, None), (30_000, 812.0, 40.0)])
    curve = eval_curve(run)
    assert curve.label == "r"
    np.testing.assert_array_equal(curve.steps, [10_000, 20_000, 30_000])
    np.testing.assert_array_equal(curve.means[[0, 2]], [-3.5, 812.0])
    np.testing.assert_array_equal(curve.stds[[0, 2]], [1.25, 40.0])
    assert math.isnan(curve.means[1]) and math.isnan(curve.stds[1])  # JSON null: no finite episode


def test_labels_are_seeds_when_distinct_else_directory_names(tmp_path):
    a = fake_run(tmp_path / "a", 0, [(1, 0.0, 0.0)])
    b = fake_run(tmp_path / "b", 2, [(1, 0.0, 0.0)])
    c = fake_run(tmp_path / "c", 2, [(1, 0.0, 0.0)])
    assert run_labels([a, b]) == ["seed 0", "seed 2"]
    assert run_labels([b, c]) == ["b", "c"]
    (a / "config.json").unlink()
    assert run_labels([a, b]) == ["a", "b"]


def test_parse_reference():
    assert parse_reference("zoo=9535") == ("zoo", 9535.0)
    assert parse_reference("SB3 zoo (1M)=-12.5") == ("SB3 zoo (1M)", -12.5)
    for bad in ("9535", "=1", "zoo=", "zoo=inf", "zoo=abc"):
        with pytest.raises(ConfigError, match=r"is not NAME=VALUE with a finite number; write e.g. --reference"):
            parse_reference(bad)


def test_cli_overlays_several_runs(tmp_path, capsys):
    runs = [fake_run(tmp_path / f"s{i}", i, [(10_000, 100.0 * i, 5.0), (20_000, 200.0 * i, 5.0)]) for i in range(3)]
    out = tmp_path / "figs" / "hc.png"
    argv = ["plot", *map(str, runs), "--out", str(out), "--reference", "zoo=5819", "target=3000"]
    assert main(argv) == 0
    assert out.read_bytes()[:8] == PNG
    assert f"wrote {out}" in capsys.readouterr().out
    assert not any((run / "learning_curve.png").exists() for run in runs)


def test_cli_single_run_keeps_its_figure_and_takes_out_and_references(tmp_path):
    run = fake_run(tmp_path / "one", 0, [(10_000, 1.0, 0.5)])
    assert main(["plot", str(run)]) == 0
    assert (run / "learning_curve.png").read_bytes()[:8] == PNG
    out = tmp_path / "elsewhere.png"
    assert main(["plot", str(run), "--out", str(out), "--reference", "zoo=2"]) == 0
    assert out.read_bytes()[:8] == PNG


def _error(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("gaussrl: error: ") and err.count("\n") == 1, err
    return err


def test_cli_errors_are_one_line(tmp_path, capsys):
    run = fake_run(tmp_path / "ok", 0, [(10_000, 1.0, 0.5)])
    missing = tmp_path / "missing"
    err = _error(capsys, ["plot", str(run), str(missing)])
    assert f"run directory '{missing}' does not exist; pass a directory written by gaussrl train." in err
    no_eval = fake_run(tmp_path / "young", 1, [])
    err = _error(capsys, ["plot", str(run), str(no_eval)])
    assert f"no evaluations in '{no_eval}'" in err and "wait for one or leave this run out" in err
    assert "is not NAME=VALUE" in _error(capsys, ["plot", str(run), "--reference", "zoo"])
    assert "no run directory to plot" in _error(capsys, ["plot"])
    assert "does not exist" in _error(capsys, ["plot", str(missing)])


def test_plot_runs_raises_user_errors(tmp_path):
    with pytest.raises(ConfigError):
        plot_runs([])
    with pytest.raises(MissingRunFileError):
        plot_runs([tmp_path / "nothing"], tmp_path / "x.png")
