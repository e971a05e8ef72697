"""Micro-benchmarks behind the recommendations in benchmarks/README.md."""
