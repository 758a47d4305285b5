"""Smoke tests of the benchmarks under bench/, at their smallest size, so they cannot rot."""
