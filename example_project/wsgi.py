"""WSGI entry point: ``gunicorn example_project.wsgi:application`` from the repository root."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")

application = get_wsgi_application()

from example_project.apps import say_where_recording_goes  # noqa: E402 (needs settings)

say_where_recording_goes()
