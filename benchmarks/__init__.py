"""Benchmarks that print figures (not tests): see docs/benchmarks.md."""
