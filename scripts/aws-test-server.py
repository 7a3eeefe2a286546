#!/usr/bin/env python3
"""AWS emulator for htsprep's tests: moto 5.2.5's server (S3, ECS, EC2, ...) on loopback.

There is no real AWS on the build machines, so the S3 artifact store's and the ECS fleet's tests
run against moto.  Run it through scripts/aws-test-server.sh, which creates the venv with
moto[server]==5.2.5 and execs this file.

    python aws-test-server.py [--port 0] [--verbose]

binds 127.0.0.1 only (port 0 = the kernel picks a free one, with no probe-then-bind race),
prints exactly one line "moto listening on 127.0.0.1:PORT" to stdout (flushed) once the socket
accepts connections, then serves until SIGTERM/SIGINT and exits 0.  `moto_server -p 0` cannot be
used: it never reports the port it got.  Point the AWS SDK at http://127.0.0.1:PORT with test
credentials, region us-east-1 and S3 path-style addressing.  All state lives in memory and is lost
on exit; POST /moto-api/reset clears it between tests.  --verbose logs every request to stderr.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

EXPECTED_MOTO = "5.2.5"


class AtomicConditionalWrites:
    """WSGI middleware: S3 conditional writes, one at a time.

    S3 applies a write's If-None-Match / If-Match atomically: of two racing creates of one key,
    one succeeds and the other gets 412 (or 409, to be retried).  moto 5.2.5 checks the condition
    and then writes, without a lock, on a threaded server, so two racing creates can both succeed
    (and the second can fail with a 500 while replacing the first).  htsprep's create-once
    publishing relies on S3's guarantee, so the emulator serializes every PUT or POST that carries
    a condition, and its answer is produced before the next one starts.  Other requests still run
    in parallel.
    """

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        conditional = environ.get("REQUEST_METHOD") in ("PUT", "POST") and (
            "HTTP_IF_NONE_MATCH" in environ or "HTTP_IF_MATCH" in environ
        )
        if not conditional:
            return self.app(environ, start_response)
        with self.lock:
            body = self.app(environ, start_response)
            try:
                return [b"".join(body)]
            finally:
                if hasattr(body, "close"):
                    body.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0 = any free)")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args()
    if not 0 <= args.port <= 65535:
        parser.error("--port must be 0..65535")

    try:
        import moto
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server
    except ImportError as error:
        sys.exit(
            f"aws-test-server: cannot import moto[server] ({error}); "
            "run scripts/aws-test-server.sh, which installs it"
        )
    if getattr(moto, "__version__", "?") != EXPECTED_MOTO:
        print(
            f"aws-test-server: warning: moto {moto.__version__} installed, "
            f"htsprep's tests were written against {EXPECTED_MOTO}",
            file=sys.stderr,
        )
    if not args.verbose:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    # What moto.server.main() does, minus run_simple: make_server() binds (and listens) here, so
    # the real port is known before the line is printed and connections queue until served.
    app = AtomicConditionalWrites(DomainDispatcherApplication(create_backend_app))
    server = make_server(
        "127.0.0.1", args.port, app, threaded=True, request_handler=MotoRequestHandler
    )
    host, port = server.server_address[:2]
    os.environ["MOTO_PORT"] = str(port)  # moto builds some URLs from it, as moto_server does
    thread = threading.Thread(target=server.serve_forever, name="moto-server", daemon=True)
    thread.start()
    try:
        print(f"moto listening on {host}:{port}", flush=True)
        while not stop.wait(3600):
            pass
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
