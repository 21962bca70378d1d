"""Named fakes shared by the tests (hardware and time stand-ins; never used by the library)."""

from __future__ import annotations


class FakeClock:
    """A monotonic clock that moves only when told to: ``clock.advance(seconds)``."""

    def __init__(self, start_s: float = 0.0) -> None:
        self.now_s = start_s

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds
