"""The installed command on hostile input: user text is never rich markup, and every user or OS
error is one line with the exit code the README documents, never a traceback."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import tiny_experiment

HARNESS = str(Path(sys.executable).parent / "harness")
NAME = "exp [/x] [red]x"


def harness(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([HARNESS, *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def one_error_line(proc: subprocess.CompletedProcess, code: int) -> str:
    assert proc.returncode == code, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1, proc.stderr[-3000:]
    return lines[0]


@pytest.fixture(scope="module")
def markup_run(tmp_path_factory):
    """One quick run whose experiment name and class labels look like rich markup."""
    from sklearn.datasets import load_digits

    root = tmp_path_factory.mktemp("markup")
    digits = load_digits()
    labels = np.array([f"[/x]{i}" if i % 2 else f"[red]x{i}" for i in range(10)])
    np.savez(root / "d.npz", x=digits.images / 16.0, y=digits.target, class_names=labels)
    experiment = tiny_experiment(
        NAME, dataset=f'name = "npz"\npath = "{root / "d.npz"}"',
        measure='batch_sizes = [1]\nmin_duration_s = 0.1\nisolation = "inline"',
    ).replace("[dataset]\nimage_size = 8\n", "[dataset]\n", 1)
    (root / "exp.toml").write_text(experiment)
    proc = harness("run", str(root / "exp.toml"), "--results-dir", str(root / "results"))
    return root, proc


def test_markup_in_names_and_labels_is_printed_literally_by_run_list_and_show(markup_run):
    from harness.store import open_store

    root, proc = markup_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    store = root / "results" / "harness.db"
    st = open_store(store)
    (run,) = st.runs()
    (point,) = st.operating_points(run["run_id"])
    st.close()
    assert f"({point.accuracy.worst_class})" in proc.stdout  # the label as written, not restyled
    listed = harness("results", "list", "--store", str(store))
    assert listed.returncode == 0, listed.stderr[-3000:]
    assert NAME in listed.stdout
    shown = harness("results", "show", run["run_id"], "--store", str(store))
    assert shown.returncode == 0, shown.stderr[-3000:]
    assert f"({NAME})" in shown.stdout
    missing = harness("results", "show", "[/x]\x1b[31m", "--store", str(store))
    line = one_error_line(missing, 2)
    assert "[/x]\\x1b[31m" in line and "\x1b" not in line  # named, control character shown escaped


@pytest.mark.parametrize(("text", "key"), [
    ("seed = -1\n", "seed"),
    ("[train]\nlr = inf\n", "train.lr"),
    ("[measure]\nmin_duration_s = nan\n", "measure.min_duration_s"),
    ('name = ""\n', "name"),
    ('name = "  "\n', "name"),
])
def test_impossible_values_are_refused_at_validation_with_exit_2(tmp_path, text, key):
    (tmp_path / "bad.toml").write_text(text)
    line = one_error_line(harness("run", str(tmp_path / "bad.toml"), "--results-dir", str(tmp_path / "r")), 2)
    assert f"{key}:" in line
    assert not (tmp_path / "r").exists()  # rejected before any work


def test_a_negative_seed_flag_is_refused_with_exit_2(tmp_path):
    line = one_error_line(harness("run", "--seed", "-1", "--results-dir", str(tmp_path / "r")), 2)
    assert "seed" in line


def test_an_experiment_path_that_is_a_directory_is_exit_2(tmp_path):
    (tmp_path / "exp").mkdir()
    line = one_error_line(harness("run", str(tmp_path / "exp"), "--results-dir", str(tmp_path / "r")), 2)
    assert str(tmp_path / "exp") in line


def test_a_results_dir_that_is_a_file_is_exit_7(tmp_path):
    (tmp_path / "results").write_text("")
    line = one_error_line(harness("run", "--results-dir", str(tmp_path / "results")), 7)
    assert str(tmp_path / "results") in line


def test_a_results_folder_that_cannot_be_written_is_exit_7_with_a_writable_store(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / "runs").write_text("")  # a file where the run folders go
    experiment = tmp_path / "exp.toml"
    experiment.write_text(tiny_experiment("t"))
    proc = harness("run", str(experiment), "--results-dir", str(results), "--store", str(tmp_path / "s.db"))
    line = one_error_line(proc, 7)
    assert str(results / "runs") in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_results_folder_is_exit_7(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    results.chmod(0o555)
    experiment = tmp_path / "exp.toml"
    experiment.write_text(tiny_experiment("t"))
    try:
        proc = harness("run", str(experiment), "--results-dir", str(results), "--store", str(tmp_path / "s.db"))
    finally:
        results.chmod(0o755)
    assert "Permission denied" in one_error_line(proc, 7)


def test_an_onnx_operator_onnxruntime_lacks_names_the_file_and_the_operator(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("NoSuchOp", ["f"], ["y"], domain="custom.ops")],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 10])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("custom.ops", 1)])
    onnx.save(model, tmp_path / "custom.onnx")
    experiment = tmp_path / "exp.toml"
    experiment.write_text(tiny_experiment("t").replace("[model]\n", f'[model]\nname = "{tmp_path / "custom.onnx"}"\n')
                          .replace("channels = [8, 8, 8, 8, 8]\n", ""))
    line = one_error_line(harness("run", str(experiment), "--results-dir", str(tmp_path / "r")), 5)
    assert str(tmp_path / "custom.onnx") in line and "NoSuchOp" in line


def test_export_refuses_a_file_and_existing_tables_and_names_unwritable_paths(markup_run, tmp_path):
    root, _ = markup_run
    store = str(root / "results" / "harness.db")
    from harness.store import open_store

    st = open_store(store)
    run_id = st.runs()[0]["run_id"]
    st.close()
    (tmp_path / "file").write_text("keep")
    line = one_error_line(harness("results", "export", run_id, "-o", str(tmp_path / "file"), "--store", store), 2)
    assert str(tmp_path / "file") in line and (tmp_path / "file").read_text() == "keep"
    out = tmp_path / "out"
    assert harness("results", "export", run_id, "-f", "json", "-o", str(out), "--store", store).returncode == 0
    line = one_error_line(harness("results", "export", run_id, "-f", "json", "-o", str(out), "--store", store), 2)
    assert "--force" in line
    assert harness("results", "export", run_id, "-f", "json", "-o", str(out), "--force", "--store", store).returncode == 0
    line = one_error_line(harness("results", "export", run_id, "-o", str(tmp_path / "file" / "sub"), "--store", store), 7)
    assert str(tmp_path / "file" / "sub") in line


def test_a_full_disk_during_a_run_is_one_line_exit_7_and_keeps_what_was_stored(tmp_path, monkeypatch, capsys):
    import harness.report.files
    from harness.cli import main
    from harness.store import open_store

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "results" / "card.md"))

    monkeypatch.setattr(harness.report.files, "write_card_files", full)
    monkeypatch.delenv("HARNESS_DEBUG", raising=False)
    experiment = tmp_path / "exp.toml"
    experiment.write_text(tiny_experiment("t", measure='batch_sizes = [1]\nmin_duration_s = 0.1\nisolation = "inline"'))
    monkeypatch.setattr(sys, "argv", ["harness", "run", str(experiment), "--results-dir", str(tmp_path / "results")])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 7
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "No space left on device" in lines[0] and "card.md" in lines[0]
    assert "Traceback" not in err
    st = open_store(tmp_path / "results" / "harness.db")
    (run,) = st.runs()
    assert run["status"] == "failed"
    assert st.count("operating_points", run["run_id"]) == 1  # measured before the disk filled: kept
    st.close()
