"""Measurement: latency sampling and statistics, memory, environment, the measuring process."""
