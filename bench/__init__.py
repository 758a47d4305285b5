"""Benchmark of edge-csms against a baseline built on the `ocpp` package (see README.md)."""
