"""See inside a running TileStache tile server: per-process events in Redis, shown to staff."""

__version__ = "0.1.0"
