"""Benchmarks run on demand: they print figures, they assert nothing."""
