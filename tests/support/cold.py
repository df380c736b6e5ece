"""Tiles nobody has asked for yet in this test process, so each is rendered, never a hit.

The test settings give the process a tile cache of its own, and a layer, ``cold``,
that only this helper names: the property tests ask for random tiles of the other
layers, so a "fresh" tile of those could already be in the cache.
"""

from __future__ import annotations

import itertools

#: The layer in tests/settings.py that only ``cold_tile`` asks for.
COLD_LAYER = "cold"

_handed_out = itertools.count()


def cold_tile(zoom: int) -> str:
    """A tile path (``/cold/<zoom>/<x>/<y>.png``) this process has not served before."""
    side = 2**zoom
    n = next(_handed_out)
    if n >= side * side:
        raise RuntimeError(f"every tile of zoom {zoom} has been handed out")
    return f"/{COLD_LAYER}/{zoom}/{n % side}/{n // side}.png"
