"""WSGI entry point: ``gunicorn example_project.wsgi:application`` from the repository root.

``FastPath`` answers tile requests before Django's middleware and URL
resolution (see docs/fast-path.md); everything else goes to Django. To serve
tiles through Django instead, drop the wrapper, or set ``TILESTATUS_FAST_PATH=0``
(``TILESTATUS["FAST_PATH"] = False``).
"""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")
django_application = get_wsgi_application()

from django_tilestatus.web.fastpath import FastPath  # noqa: E402 - once Django is set up
from example_project.apps import say_where_recording_goes  # noqa: E402 (needs settings)

application = FastPath(django_application)
say_where_recording_goes()
# What is loaded so far lives as long as the worker: out of the collector's sight, a
# full collection no longer walks Django's whole heap (docs/deployment.md).
gc.freeze()
