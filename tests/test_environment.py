"""Environment capture against fake /proc trees and throwaway git repositories."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.measure.environment import capture_environment, cpu_has_vnni, git_commit

X86_CPUINFO = """\
processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz
flags\t\t: fpu sse sse2 avx fma f16c avx2 avx512f avx512bw avx512_vnni

processor\t: 1
model name\t: Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz
flags\t\t: fpu sse sse2 avx fma f16c avx2 avx512f avx512bw avx512_vnni
"""

ARM_CPUINFO = """\
processor\t: 0
model name\t: ARMv8 Processor rev 1 (v8l)
BogoMIPS\t: 62.50
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm asimddp
CPU implementer\t: 0x41
"""

ARM_NO_DOTPROD_CPUINFO = """\
processor\t: 0
model name\t: ARMv8 Processor rev 4 (v8l)
Features\t: fp asimd evtstrm crc32 cpuid
"""


def fake_proc(tmp_path: Path, cpuinfo: str) -> Path:
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "cpuinfo").write_text(cpuinfo)
    return proc


@pytest.fixture
def not_a_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # never find a repo above tmp_path
    directory = tmp_path / "plain"
    directory.mkdir()
    return directory


def test_x86_cpuinfo_gives_model_and_inference_flags_with_vnni(tmp_path: Path, not_a_repo: Path) -> None:
    env = capture_environment(repo_root=not_a_repo, proc_root=fake_proc(tmp_path, X86_CPUINFO))
    assert env.cpu_model == "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz"
    assert env.cpu_flags == ["avx2", "avx512f", "avx512_vnni", "fma", "f16c"]
    assert cpu_has_vnni(env.cpu_flags)


def test_arm_features_line_gives_asimd_flags_and_dotprod_counts_as_vnni(
    tmp_path: Path, not_a_repo: Path
) -> None:
    env = capture_environment(repo_root=not_a_repo, proc_root=fake_proc(tmp_path, ARM_CPUINFO))
    assert env.cpu_flags == ["asimd", "asimddp"]
    assert cpu_has_vnni(env.cpu_flags)


def test_cpus_without_int8_dot_product_are_not_vnni() -> None:
    assert not cpu_has_vnni(["avx2", "avx512f", "fma", "f16c"])
    assert not cpu_has_vnni(["asimd"])
    assert cpu_has_vnni(["avx_vnni"]) and cpu_has_vnni(["amx_int8"])


def test_missing_cpuinfo_gives_no_flags_instead_of_failing(tmp_path: Path, not_a_repo: Path) -> None:
    env = capture_environment(repo_root=not_a_repo, proc_root=tmp_path / "empty-proc")
    assert env.cpu_flags == []


def test_outside_a_git_checkout_commit_is_none_with_a_reason(tmp_path: Path, not_a_repo: Path) -> None:
    env = capture_environment(repo_root=not_a_repo, proc_root=fake_proc(tmp_path, ARM_NO_DOTPROD_CPUINFO))
    assert env.git_commit is None
    assert str(not_a_repo) in (env.git_commit_unavailable_reason or "")
    assert "not a git checkout" in (env.git_commit_unavailable_reason or "")


def test_library_versions_name_every_tracked_package_and_find_numpy(tmp_path: Path, not_a_repo: Path) -> None:
    env = capture_environment(repo_root=not_a_repo, proc_root=fake_proc(tmp_path, X86_CPUINFO))
    assert {"harness", "torch", "onnxruntime", "numpy", "scikit-learn"} <= set(env.library_versions)
    assert env.library_versions["numpy"]
    assert env.python and env.os and env.hostname
    assert env.logical_cores is None or env.logical_cores >= 1


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_commit_is_head_and_marked_dirty_only_for_tracked_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no user or global git config leaks in
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    repo = tmp_path / "repo"
    repo.mkdir()

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t",
                               "-c", "commit.gpgsign=false", *args],
                              check=True, capture_output=True, text=True).stdout.strip()

    git("init", "-q")
    (repo / "tracked.txt").write_text("a\n")
    git("add", "tracked.txt")
    git("commit", "-q", "-m", "first")
    head = git("rev-parse", "HEAD")
    assert re.fullmatch(r"[0-9a-f]{40}", head)

    (repo / "untracked.txt").write_text("ignored by the dirty check\n")
    assert git_commit(repo) == (head, None)

    (repo / "tracked.txt").write_text("changed\n")
    assert git_commit(repo) == (f"{head}+dirty", None)
