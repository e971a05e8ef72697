"""Sluice vs MLflow benchmarks (`make bench`); see benchmarks/README.md."""
