"""gunicorn config for a test: each worker's recorder holds at most 100 events.

The real bound (10,000) takes minutes of requests to reach; a small one shows
within seconds that a worker drops the oldest events, rather than growing,
while Redis is away. Used with ``gunicorn -c`` by the hung-Redis test only.
"""


def post_fork(server, worker):
    from django_tilestatus.recording import recorder

    recorder.MAX_QUEUE = 100
