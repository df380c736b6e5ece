"""The servers compared, as WSGI applications gunicorn can load by name."""
