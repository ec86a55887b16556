"""Benchmarks that print figures (not tests): see README.md."""
