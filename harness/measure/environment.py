"""What machine and software produced a result: CPU, flags, versions, git commit."""

from __future__ import annotations

import platform
import shutil
import socket
import subprocess
from pathlib import Path

import psutil

from harness.deps import version_of
from harness.records import EnvironmentInfo

#: CPU features that decide which inference kernels can run (SIMD width, int8 dot products)
INFERENCE_FLAGS = (
    "avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "fma", "f16c",  # x86
    "neon", "asimd", "asimddp",  # Arm (neon on 32-bit, asimd on 64-bit)
)
#: flags meaning the CPU has int8 dot-product instructions (fast int8 GEMM)
VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8", "asimddp"})
#: distributions whose versions go in every report (None when not installed)
DISTRIBUTIONS = (
    "harness", "torch", "onnx", "onnxruntime", "openvino", "onnxscript", "torch-pruning", "numpy", "scikit-learn",
)
GIT_TIMEOUT_S = 5.0
_REPO_ROOT = Path(__file__).resolve().parents[2]


def cpu_has_vnni(flags: list[str]) -> bool:
    """True when the CPU has int8 dot-product instructions (VNNI / AMX on x86, dotprod on Arm)."""
    return not VNNI_FLAGS.isdisjoint(flags)


def capture_environment(repo_root: Path | None = None, proc_root: Path = Path("/proc")) -> EnvironmentInfo:
    cpuinfo = _cpuinfo_fields(Path(proc_root) / "cpuinfo")
    present = set((cpuinfo.get("flags") or cpuinfo.get("Features") or "").split())
    commit, commit_reason = git_commit(repo_root or _REPO_ROOT)
    return EnvironmentInfo(
        cpu_model=cpuinfo.get("model name") or platform.processor() or None,
        physical_cores=psutil.cpu_count(logical=False),
        logical_cores=psutil.cpu_count(logical=True),
        cpu_flags=[f for f in INFERENCE_FLAGS if f in present],
        os=platform.platform(),
        python=platform.python_version(),
        library_versions={name: version_of(name) for name in DISTRIBUTIONS},
        git_commit=commit,
        git_commit_unavailable_reason=commit_reason,
        hostname=socket.gethostname(),
    )


def git_commit(repo_root: Path) -> tuple[str | None, str | None]:
    """``(commit, None)`` with a ``+dirty`` suffix for uncommitted tracked changes, or ``(None, reason)``."""
    if shutil.which("git") is None:
        return None, "git is not installed"
    try:
        head = _git(repo_root, "rev-parse", "HEAD")
        if head.returncode != 0:
            detail = head.stderr.strip().splitlines()[0] if head.stderr.strip() else "no detail"
            return None, f"{repo_root} is not a git checkout with a commit (git: {detail})"
        status = _git(repo_root, "status", "--porcelain", "--untracked-files=no")
    except subprocess.TimeoutExpired:
        return None, f"git did not answer within {GIT_TIMEOUT_S:g} s in {repo_root}"
    except OSError as exc:
        return None, f"git could not be run in {repo_root}: {exc}"
    dirty = "+dirty" if status.returncode == 0 and status.stdout.strip() else ""
    return head.stdout.strip() + dirty, None


def _git(repo_root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-C", str(repo_root), *args], capture_output=True, text=True, timeout=GIT_TIMEOUT_S
    )


def _cpuinfo_fields(path: Path) -> dict[str, str]:
    """First value of each ``key : value`` line of a cpuinfo file (all cores agree)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return {}
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    return fields
