"""ASGI entry point: ``uvicorn example_project.asgi:application`` from the repository root.

The tile view is synchronous: Django runs it in a thread of its own per request
(asgiref's ``sync_to_async`` in a per-request ``ThreadSensitiveContext``), so
its in-flight entries, keyed by thread, are one per request as under gunicorn.
"""

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")

application = get_asgi_application()
gc.freeze()  # as wsgi.py: the loaded app out of the collector's sight
