"""Atomic writes: a temp file of their own next to the target, nothing left behind, no torn files."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from harness.atomic import atomic_path, atomic_write_bytes, atomic_write_text


def test_a_write_replaces_the_target_and_leaves_only_it(tmp_path):
    target = tmp_path / "details.json"
    target.write_text("old")
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["details.json"]


def test_a_failed_write_leaves_no_temp_file_and_the_old_target(tmp_path):
    target = tmp_path / "baseline.pt"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["baseline.pt"]


def test_concurrent_thread_writers_never_tear_the_file_or_lose_their_temp(tmp_path):
    target = tmp_path / "model.onnx"
    payloads = [bytes([i]) * 200_000 for i in range(8)]
    errors: list[BaseException] = []

    def write(data: bytes) -> None:
        try:
            for _ in range(20):
                atomic_write_bytes(target, data)
                seen = target.read_bytes()
                assert seen in payloads, "torn file"
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(p,)) for p in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert target.read_bytes() in payloads
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


_WRITER = """
import sys, torch
from harness.atomic import atomic_path
target, seed = sys.argv[1], int(sys.argv[2])
for i in range(15):
    torch.manual_seed(seed)
    with atomic_path(target) as tmp:
        torch.save({"w": torch.randn(20_000), "seed": seed}, tmp)
    torch.load(target, weights_only=True)
"""


def test_two_processes_saving_the_same_checkpoint_both_succeed(tmp_path):
    target = tmp_path / "baseline.pt"
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(target), str(seed)], stderr=subprocess.PIPE,
                              text=True) for seed in (1, 2)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    import torch

    assert torch.load(target, weights_only=True)["seed"] in (1, 2)
    assert [p.name for p in Path(tmp_path).iterdir()] == ["baseline.pt"]


def test_no_fixed_temp_file_names_remain_in_the_library():
    root = Path(__file__).resolve().parents[1] / "harness"
    offenders = [f"{p.relative_to(root)}:{n}" for p in root.rglob("*.py")
                 for n, line in enumerate(p.read_text().splitlines(), 1)
                 if '.tmp"' in line and "atomic.py" not in p.name]
    assert offenders == []
