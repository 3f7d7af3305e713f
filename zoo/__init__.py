"""The model zoo: models written in this repository with seeded weights (no downloads)."""
