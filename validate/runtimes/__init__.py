"""Runtimes: each executes one Format on a device. One module per runtime."""
