"""``manage.py tilestatus_clean``: remove layers' cached tiles at zooms A-B within an area."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from ... import runtime
from ...seeding.options import add_area_arguments, request_of
from ...seeding.work import cached_at


class Command(BaseCommand):
    help = (
        "Remove the cached tiles of layers at zooms A-B within a bounding box or GeoJSON "
        "polygons (all, or those written before --older-than), through the layer's cache."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_area_arguments(parser)
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would go; remove nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        request = request_of(dict(options, force=False))
        plan = request.plan
        older_than = request.spec["older_than"]
        server = runtime.get_server()
        cache = server.configuration.cache
        coordinate = server._coordinate
        extension = request.spec["extension"]
        removed = looked_at = 0
        for number in range(plan.chunks):
            chunk = plan.chunk(number)
            segment = chunk.segment
            layer = server.configuration.layers[segment.layer.name]
            _, format = layer.getTypeByExtension(extension)
            for index in range(chunk.start, chunk.stop):
                for x, y in segment.tiles_of(index, plan.area):
                    looked_at += 1
                    coord = coordinate(y, x, segment.zoom)
                    when = cached_at(cache, layer, coord, format)
                    if when is None or (older_than is not None and when >= older_than):
                        continue
                    removed += 1
                    if not options["dry_run"]:
                        cache.remove(layer, coord, format)
        verb = "Would remove" if options["dry_run"] else "Removed"
        self.stdout.write(f"{verb} {removed:,} cached tiles of {looked_at:,} looked at.")
