"""An optional clock lock around a measurement, restored in ``finally`` whatever happens inside.

``measure.lock_clocks = true`` pins clocks for the measuring process's whole life (idle
baseline included, so idle and loaded power are taken at the same clocks):

* NVIDIA GPU (not Jetson): ``nvmlDeviceSetGpuLockedClocks(handle, f, f)`` at
  ``measure.lock_gpu_clock_mhz``, else the GPU's default applications (base) SM clock, which
  it can hold under load (the maximum boost clock would meet the power cap and throttle);
  reset with ``nvmlDeviceResetGpuLockedClocks``. Without NVML, ``nvidia-smi -lgc f,f`` and
  ``nvidia-smi -rgc``, which need the frequency given.
* Jetson: ``jetson_clocks --store FILE`` saves the current settings, ``jetson_clocks`` pins
  CPU/GPU/EMC at their maximum for the power mode, ``jetson_clocks --restore FILE`` puts back
  what was saved. If the settings cannot be saved the clocks are not touched.
* CPU only: nothing; the harness does not change the CPU governor.

Locking needs root (or admin rights on the GPU). Without them the lock is not taken, a
warning says so, and the measurement goes on: never a crash. The restore runs in
``finally``, also on an exception or Ctrl-C in the body; SIGTERM (a timeout killing the
measuring process) is turned into ``SystemExit`` while the lock is held so that it restores
too. SIGKILL cannot be caught: a killed process leaves the clocks locked, and the warning
recorded with every locked point says how to reset them by hand.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.measure.jetson_state import CommandRunner, run_command

MANUAL_RESET = {
    "nvml": "nvidia-smi -rgc",
    "nvidia-smi": "nvidia-smi -rgc",
    "jetson_clocks": "sudo jetson_clocks --restore <saved file>, or reboot",
}


@dataclass
class ClockLockState:
    """What the lock did (mutable while the lock is held; read after it is released)."""

    requested: bool
    locked: bool = False
    method: str | None = None  # nvml | nvidia-smi | jetson_clocks
    gpu_clock_mhz: int | None = None
    restored: bool | None = None  # None: nothing to restore
    warnings: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)  # what was run, in order

    def record(self) -> dict[str, Any]:
        """The fields DeviceState carries: ``clocks_locked`` and ``clock_lock``."""
        return {"method": self.method, "gpu_clock_mhz": self.gpu_clock_mhz, "restored": self.restored}


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    """While held, SIGTERM raises SystemExit (so ``finally`` blocks run); only from the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)

    def _exit(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def clock_lock(
    requested: bool,
    *,
    kind: str,
    state_dir: Path,
    nvml: Any = None,
    run: CommandRunner = run_command,
    device_index: int = 0,
    gpu_clock_mhz: int | None = None,
) -> Iterator[ClockLockState]:
    """Lock clocks for the body when ``requested``; ``kind`` is ``jetson``, ``gpu`` or ``cpu``."""
    state = ClockLockState(requested)
    if not requested:
        yield state
        return
    restore = None
    with _sigterm_raises():
        try:
            if kind == "jetson":
                restore = _lock_jetson(state, run, Path(state_dir) / "jetson_clocks.saved")
            elif kind == "gpu":
                restore = _lock_gpu(state, nvml, run, device_index, gpu_clock_mhz)
            else:
                state.warnings.append(
                    "measure.lock_clocks has nothing to lock on a CPU-only runtime: the harness does not change "
                    "the CPU governor (set it to 'performance' yourself for steadier numbers)"
                )
            yield state
        finally:
            if restore is not None:
                restore()


def _lock_jetson(state: ClockLockState, run: CommandRunner, saved: Path):
    state.method = "jetson_clocks"
    status, out = _run(state, run, ["jetson_clocks", "--store", str(saved)])
    if status != 0:
        state.warnings.append(
            f"clocks not locked: jetson_clocks --store failed (exit {status}: {out.strip()[:160]}); it needs root, "
            "and without the saved settings the clocks could not be restored"
        )
        return None

    def restore() -> None:
        status, out = _run(state, run, ["jetson_clocks", "--restore", str(saved)])
        state.restored = status == 0
        if status != 0:
            state.warnings.append(
                f"jetson_clocks --restore failed (exit {status}: {out.strip()[:160]}): the board may still run "
                f"pinned clocks; reset by hand ({MANUAL_RESET['jetson_clocks']})"
            )

    status, out = _run(state, run, ["jetson_clocks"])
    if status != 0:
        state.warnings.append(f"clocks not locked: jetson_clocks failed (exit {status}: {out.strip()[:160]})")
    else:
        state.locked = True
    return restore  # restore even after a failed lock: it may have pinned some clocks before failing


def _lock_gpu(state: ClockLockState, nvml: Any, run: CommandRunner, index: int, mhz: int | None):
    if nvml is None:
        return _lock_gpu_smi(state, run, index, mhz)
    state.method = "nvml"
    try:
        nvml.nvmlInit()
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        if mhz is None:
            try:
                mhz = int(nvml.nvmlDeviceGetDefaultApplicationsClock(handle, nvml.NVML_CLOCK_SM))
            except nvml.NVMLError:
                mhz = int(nvml.nvmlDeviceGetMaxClockInfo(handle, nvml.NVML_CLOCK_SM))
    except nvml.NVMLError as exc:
        state.warnings.append(f"clocks not locked: NVML could not be read ({exc})")
        return None
    state.calls.append(f"nvmlDeviceSetGpuLockedClocks({index}, {mhz}, {mhz})")
    try:
        nvml.nvmlDeviceSetGpuLockedClocks(handle, mhz, mhz)
    except nvml.NVMLError as exc:
        state.warnings.append(
            f"clocks not locked: nvmlDeviceSetGpuLockedClocks refused ({exc}); locking GPU clocks needs root or "
            "admin rights on the GPU (and a Volta or newer board)"
        )
        return None
    state.locked, state.gpu_clock_mhz = True, mhz

    def restore() -> None:
        state.calls.append(f"nvmlDeviceResetGpuLockedClocks({index})")
        try:
            nvml.nvmlDeviceResetGpuLockedClocks(handle)
            state.restored = True
        except nvml.NVMLError as exc:
            state.restored = False
            state.warnings.append(
                f"nvmlDeviceResetGpuLockedClocks failed ({exc}): GPU {index} may still be locked at {mhz} MHz; "
                f"reset by hand ({MANUAL_RESET['nvml']})"
            )

    return restore


def _lock_gpu_smi(state: ClockLockState, run: CommandRunner, index: int, mhz: int | None):
    state.method = "nvidia-smi"
    if mhz is None:
        state.warnings.append(
            "clocks not locked: without NVML (nvidia-ml-py) the clock to lock at is unknown; "
            "set measure.lock_gpu_clock_mhz to lock with nvidia-smi -lgc"
        )
        return None
    status, out = _run(state, run, ["nvidia-smi", "-i", str(index), "-lgc", f"{mhz},{mhz}"])
    if status != 0:
        state.warnings.append(f"clocks not locked: nvidia-smi -lgc failed (exit {status}: {out.strip()[:160]})")
        return None
    state.locked, state.gpu_clock_mhz = True, mhz

    def restore() -> None:
        status, out = _run(state, run, ["nvidia-smi", "-i", str(index), "-rgc"])
        state.restored = status == 0
        if status != 0:
            state.warnings.append(f"nvidia-smi -rgc failed (exit {status}): GPU {index} may still be locked")

    return restore


def _run(state: ClockLockState, run: CommandRunner, argv: list[str]) -> tuple[int, str]:
    state.calls.append(" ".join(argv))
    return run(argv)
