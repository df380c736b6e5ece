"""A runnable Django project that serves a drawn ``demo`` layer through django_tilestatus."""
