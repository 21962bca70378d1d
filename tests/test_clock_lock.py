"""The clock lock: taken, recorded and always restored (body raising, Ctrl-C, SIGTERM), never a crash without rights."""

from __future__ import annotations

import os
import signal

import pytest

from harness.measure.clock_lock import clock_lock
from tests.test_jetson_state import FakeRunner


class FakeLockNvml:
    """The pynvml calls the lock makes; ``calls`` records them; ``permission`` False refuses the lock."""

    NVML_CLOCK_SM = 1

    class NVMLError(Exception):
        pass

    def __init__(self, permission: bool = True, reset_ok: bool = True, default_clock: bool = True) -> None:
        self.permission, self.reset_ok, self.default_clock, self.calls = permission, reset_ok, default_clock, []

    def nvmlInit(self):
        pass

    def nvmlDeviceGetHandleByIndex(self, i):
        return f"gpu{i}"

    def nvmlDeviceGetDefaultApplicationsClock(self, h, kind):
        if not self.default_clock:
            raise self.NVMLError("Not Supported")
        return 1410

    def nvmlDeviceGetMaxClockInfo(self, h, kind):
        return 1980

    def nvmlDeviceSetGpuLockedClocks(self, h, lo, hi):
        self.calls.append(("lock", lo, hi))
        if not self.permission:
            raise self.NVMLError("Insufficient Permissions")

    def nvmlDeviceResetGpuLockedClocks(self, h):
        self.calls.append(("reset",))
        if not self.reset_ok:
            raise self.NVMLError("Unknown Error")


def test_not_requested_touches_nothing(tmp_path):
    nvml = FakeLockNvml()
    with clock_lock(False, kind="gpu", state_dir=tmp_path, nvml=nvml) as lock:
        pass
    assert nvml.calls == [] and lock.locked is False and lock.requested is False


def test_nvml_lock_at_the_base_clock_is_reset_when_the_body_raises(tmp_path):
    nvml = FakeLockNvml()
    with pytest.raises(RuntimeError, match="inference blew up"):
        with clock_lock(True, kind="gpu", state_dir=tmp_path, nvml=nvml) as lock:
            assert lock.locked and lock.gpu_clock_mhz == 1410 and nvml.calls == [("lock", 1410, 1410)]
            raise RuntimeError("inference blew up")
    assert nvml.calls == [("lock", 1410, 1410), ("reset",)]
    assert lock.restored is True and lock.record() == {"method": "nvml", "gpu_clock_mhz": 1410, "restored": True}


def test_nvml_lock_falls_back_to_the_max_clock_or_takes_the_given_one(tmp_path):
    with clock_lock(True, kind="gpu", state_dir=tmp_path, nvml=FakeLockNvml(default_clock=False)) as lock:
        assert lock.gpu_clock_mhz == 1980
    nvml = FakeLockNvml()
    with clock_lock(True, kind="gpu", state_dir=tmp_path, nvml=nvml, gpu_clock_mhz=1200):
        pass
    assert nvml.calls == [("lock", 1200, 1200), ("reset",)]


def test_no_permission_is_a_warning_not_a_crash_and_nothing_is_reset(tmp_path):
    nvml = FakeLockNvml(permission=False)
    with clock_lock(True, kind="gpu", state_dir=tmp_path, nvml=nvml) as lock:
        pass
    assert lock.locked is False and lock.restored is None and nvml.calls == [("lock", 1410, 1410)]
    assert "Insufficient Permissions" in lock.warnings[0] and "needs root" in lock.warnings[0]


def test_a_failed_reset_is_warned_with_the_manual_command(tmp_path):
    with clock_lock(True, kind="gpu", state_dir=tmp_path, nvml=FakeLockNvml(reset_ok=False)) as lock:
        pass
    assert lock.restored is False and "nvidia-smi -rgc" in lock.warnings[-1]


def test_jetson_clocks_store_lock_restore_in_order_even_on_ctrl_c(tmp_path):
    saved = str(tmp_path / "jetson_clocks.saved")
    run = FakeRunner({f"jetson_clocks --store {saved}": (0, ""), "jetson_clocks": (0, ""),
                      f"jetson_clocks --restore {saved}": (0, "")})
    with pytest.raises(KeyboardInterrupt):
        with clock_lock(True, kind="jetson", state_dir=tmp_path, run=run) as lock:
            raise KeyboardInterrupt
    assert run.calls == [["jetson_clocks", "--store", saved], ["jetson_clocks"], ["jetson_clocks", "--restore", saved]]
    assert lock.locked and lock.restored is True and lock.method == "jetson_clocks"


def test_jetson_without_root_leaves_the_clocks_alone(tmp_path):
    run = FakeRunner({f"jetson_clocks --store {tmp_path / 'jetson_clocks.saved'}": (1, "must be run as root")})
    with clock_lock(True, kind="jetson", state_dir=tmp_path, run=run) as lock:
        pass
    assert len(run.calls) == 1 and lock.locked is False and lock.restored is None
    assert "must be run as root" in lock.warnings[0]


def test_jetson_failed_lock_still_restores_what_was_saved(tmp_path):
    saved = str(tmp_path / "jetson_clocks.saved")
    run = FakeRunner({f"jetson_clocks --store {saved}": (0, ""), "jetson_clocks": (1, "EMC: write failed"),
                      f"jetson_clocks --restore {saved}": (0, "")})
    with clock_lock(True, kind="jetson", state_dir=tmp_path, run=run) as lock:
        pass
    assert lock.locked is False and lock.restored is True and run.calls[-1][1] == "--restore"


def test_sigterm_inside_the_lock_restores_and_the_old_handler_comes_back(tmp_path):
    nvml = FakeLockNvml()
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as exited:
        with clock_lock(True, kind="gpu", state_dir=tmp_path, nvml=nvml):
            os.kill(os.getpid(), signal.SIGTERM)
    assert exited.value.code == 128 + signal.SIGTERM and nvml.calls[-1] == ("reset",)
    assert signal.getsignal(signal.SIGTERM) == before


def test_nvidia_smi_path_without_nvml_and_cpu_only(tmp_path):
    run = FakeRunner({"nvidia-smi -i 0 -lgc 1300,1300": (0, ""), "nvidia-smi -i 0 -rgc": (0, "")})
    with clock_lock(True, kind="gpu", state_dir=tmp_path, run=run, gpu_clock_mhz=1300) as lock:
        pass
    assert lock.locked and lock.restored and lock.method == "nvidia-smi" and len(run.calls) == 2
    with clock_lock(True, kind="gpu", state_dir=tmp_path, run=FakeRunner({})) as lock:
        pass
    assert not lock.locked and "lock_gpu_clock_mhz" in lock.warnings[0]
    with clock_lock(True, kind="cpu", state_dir=tmp_path) as lock:
        pass
    assert not lock.locked and "CPU governor" in lock.warnings[0]
