"""Benchmarks for django_tilestatus: ``python -m benchmarks`` (see README.md here)."""
