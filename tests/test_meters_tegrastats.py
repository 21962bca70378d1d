"""tegrastats parsing across board generations, and the fallback meter fed by recorded lines."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.meters.tegrastats import TegrastatsMeter, parse_tegrastats
from tests.fakes import FakeClock

DATA = Path(__file__).parent / "data" / "tegrastats"


def lines(name: str) -> list[str]:
    return (DATA / name).read_text().splitlines()


def replay(name: str) -> Iterator[str]:
    """A line source that hands out one recorded line per read, then repeats the last."""
    recorded = lines(name)
    yield from recorded
    while True:
        yield recorded[-1]


@pytest.mark.parametrize(("name", "expected_w"), [
    ("nano_jp4.txt", {"POM_5V_IN": 0.933, "POM_5V_GPU": 0.0, "POM_5V_CPU": 0.084}),
    ("tx2_jp4.txt", {"VDD_SYS_GPU": 0.153, "VDD_SYS_SOC": 0.536, "VDD_4V0_WIFI": 0.633, "VDD_IN": 3.14,
                     "VDD_SYS_CPU": 0.536, "VDD_SYS_DDR": 0.557}),
    ("agx_xavier_jp4.txt", {"GPU": 1.155, "CPU": 0.385, "SOC": 2.502, "CV": 0.0, "VDDRQ": 0.192, "SYS5V": 2.692}),
    ("agx_orin_jp5.txt", {"VDD_GPU_SOC": 2.34, "VDD_CPU_CV": 0.39, "VIN_SYS_5V0": 4.025,
                          "VDDQ_VDD2_1V8AO": 0.301}),
    ("agx_orin_jp7.txt", {"VDD_GPU_SOC": 5.139, "VDD_CPU_CV": 3.268, "VIN_SYS_5V0": 5.5}),
    ("orin_nano_jp6.txt", {"VDD_IN": 4.936, "VDD_CPU_GPU_CV": 0.515, "VDD_SOC": 1.432}),
])
def test_first_recorded_line_of_each_generation_parses_to_exactly_its_rails_in_watts(
    name: str, expected_w: dict[str, float]
) -> None:
    assert parse_tegrastats(lines(name)[0]) == pytest.approx(expected_w)


def test_ram_swap_temperatures_and_not_connected_rails_are_not_taken_for_power() -> None:
    power_w = parse_tegrastats(lines("agx_orin_jp5.txt")[0])
    assert not {"RAM", "SWAP", "NC", "CPU", "GPU", "APE", "tj"} & set(power_w)


def test_current_value_is_used_not_the_running_average_or_jp7_third_value() -> None:
    assert parse_tegrastats(lines("nano_jp4.txt")[1])["POM_5V_IN"] == pytest.approx(2.371)  # 2371/1652
    jp7 = parse_tegrastats(lines("agx_orin_jp7.txt")[1])  # 5533mW/5336mW/5533mW, 3150mW/3209mW/3268mW
    assert (jp7["VDD_GPU_SOC"], jp7["VDD_CPU_CV"]) == (pytest.approx(5.533), pytest.approx(3.15))


def test_line_without_power_fields_parses_to_nothing() -> None:
    assert parse_tegrastats("RAM 330/3964MB (lfb 758x4MB) SWAP 0/1982MB (cached 0MB) CPU [2%@102,off]") == {}


def test_nano_meter_integrates_replayed_lines_and_counts_only_pom_5v_in() -> None:
    clock, source = FakeClock(), replay("nano_jp4.txt")
    meter = TegrastatsMeter(lambda: next(source), board_model="NVIDIA Jetson Nano Developer Kit",
                            interval_ms=10, clock=clock, autostart=False, min_window_s=0.0)
    meter.begin_window("run")  # line 1: 0.933 W
    clock.advance(1.0)
    meter.sampler.sample_once()  # line 2: 2.371 W
    clock.advance(1.0)
    window = meter.end_window("run")  # line 3: 2.451 W
    assert window.total_energy_j == pytest.approx((0.933 + 2.371) / 2 + (2.371 + 2.451) / 2)
    assert window.energy_j["POM_5V_GPU"] == pytest.approx((0.0 + 0.789) / 2 + (0.789 + 0.826) / 2)
    assert (window.scope, window.source, window.n_samples) == ("module", "tegrastats:POM_5V_IN", 3)


def test_agx_xavier_meter_total_is_the_sum_of_its_six_rails() -> None:
    clock, line = FakeClock(), lines("agx_xavier_jp4.txt")[0]
    meter = TegrastatsMeter(lambda: line, board_model="NVIDIA Jetson AGX Xavier Developer Kit",
                            interval_ms=10, clock=clock, autostart=False, min_window_s=0.0)
    meter.begin_window("run")
    clock.advance(10.0)
    window = meter.end_window("run")
    assert window.total_energy_j == pytest.approx((1.155 + 0.385 + 2.502 + 0.0 + 0.192 + 2.692) * 10)
    assert (window.scope, window.source) == ("module", "tegrastats:sum(GPU+CPU+SOC+CV+VDDRQ+SYS5V)")


def test_agx_orin_jp7_line_without_memory_rail_gives_a_partial_sum_and_says_which_rail_is_missing() -> None:
    clock, line = FakeClock(), lines("agx_orin_jp7.txt")[0]
    meter = TegrastatsMeter(lambda: line, board_model="NVIDIA Jetson AGX Orin Developer Kit",
                            interval_ms=10, clock=clock, autostart=False, min_window_s=0.0)
    meter.begin_window("run")
    clock.advance(2.0)
    window = meter.end_window("run")
    assert window.total_energy_j == pytest.approx((5.139 + 3.268) * 2)  # VIN_SYS_5V0 left out
    assert (window.scope, window.source) == ("soc-rails", "tegrastats:partial-sum(VDD_GPU_SOC+VDD_CPU_CV)")
    assert window.warnings == [
        "rails VDDQ_VDD2_1V8AO of NVIDIA Jetson AGX Orin Developer Kit were not found; the total misses them"
    ]


def test_no_line_yet_means_no_sample_and_a_window_that_says_so() -> None:
    clock = FakeClock()
    meter = TegrastatsMeter(lambda: None, board_model="x", interval_ms=10, clock=clock, autostart=False,
                            min_window_s=0.0)
    meter.begin_window("run")
    clock.advance(1.0)
    window = meter.end_window("run")
    assert window.total_energy_j is None
    assert window.warnings == ["no power samples were taken; the window has no energy"]


def test_missing_tegrastats_binary_is_unavailable_with_reason() -> None:
    meter = TegrastatsMeter(command="tegrastats-not-installed-here")
    assert not meter.available and "not on PATH" in (meter.reason or "")
    meter.start()
    assert meter.process is None and not meter.sampler.running


def test_tegrastats_subprocess_lines_reach_the_meter_and_the_process_is_stopped(tmp_path: Path) -> None:
    fake = tmp_path / "fake_tegrastats.py"  # prints recorded lines, then idles like tegrastats
    fake.write_text(
        "import sys, time\n"
        f"print(open({str(DATA / 'orin_nano_jp6.txt')!r}).read().splitlines()[1], flush=True)\n"
        "time.sleep(30)\n"
    )
    meter = TegrastatsMeter(command=[sys.executable, str(fake)], interval_ms=5,
                            board_model="NVIDIA Jetson Orin Nano Developer Kit")
    with meter:
        deadline = time.monotonic() + 5.0
        while not meter.sampler.samples and time.monotonic() < deadline:
            time.sleep(0.01)
        process = meter.process._proc if meter.process else None
    assert meter.process is not None and meter.process.argv[-2:] == ["--interval", "5"]
    assert meter.sampler.samples[-1].power_w == pytest.approx({"VDD_IN": 9.872, "VDD_CPU_GPU_CV": 4.338,
                                                               "VDD_SOC": 2.155})
    assert process is not None and process.poll() is not None  # terminated by close()
