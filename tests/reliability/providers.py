"""TileStache providers for the reliability tests."""

from __future__ import annotations

import time
from typing import Any

from PIL import Image


class Slow:
    """Takes ``seconds`` to draw a tile, so a test can act while a request is in flight."""

    def __init__(self, layer: Any, seconds: float = 30.0):
        self.layer = layer
        self.seconds = float(seconds)

    def renderTile(self, width: int, height: int, srs: str, coord: Any) -> Image.Image:  # noqa: N802
        time.sleep(self.seconds)
        return Image.new("RGB", (width, height), "#888888")
