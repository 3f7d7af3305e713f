"""Runtimes, parity statistics, latency harness."""
