"""Benchmark for HealthGuard Vision: `make bench` (see bench/run.py). Prints figures,
asserts nothing about speed."""
