"""Seeding: rendering a layer's tiles ahead of traffic, cut into metatile-aligned chunks.

- ``area``: the job's area, a bounding box and optional GeoJSON polygons (lon/lat);
- ``plan``: the tiles of a job, numbered chunks of whole metatiles (tile math: mercantile);
- ``jobs``: a job in Redis, a few keys whatever its size (counters, a bitmap of done chunks);
- ``work``: rendering a chunk through the layer and the app's wrapped cache;
- ``local``: running a job in N local processes; ``tasks``: a chunk as a Django task;
- ``progress``: what the command prints while a job runs.
"""
