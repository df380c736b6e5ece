"""Benchmarks for django_tilestatus: ``python -m benchmarks`` (see docs/performance.md)."""
