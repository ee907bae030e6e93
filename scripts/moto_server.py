"""moto server whose requests are handled one at a time.

moto's threaded server does not lock its backends, so two concurrent conditional writes can
both pass their condition check. Real DynamoDB applies each item write atomically; handling
requests one at a time gives moto that property while the clients stay fully concurrent.
Usage: python moto_server.py HOST PORT
"""
import sys
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple

app = DomainDispatcherApplication(create_backend_app)
lock = threading.Lock()


def serialized(environ, start_response):
    with lock:
        # Materialize the body inside the lock: the backend work happens while it is produced.
        return list(app(environ, start_response))


if __name__ == "__main__":
    run_simple(sys.argv[1], int(sys.argv[2]), serialized, threaded=True, request_handler=MotoRequestHandler)
