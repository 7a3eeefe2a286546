#!/usr/bin/env python3
"""MongoDB-wire test server for htsprep: mongoeco 4.11.0 on loopback, memory engine.

No real mongod can be installed on the build machines, so the MongoDB backend's tests run
against mongoeco's wire server (an emulator).  Run it through scripts/mongo-test-server.sh,
which creates the Python 3.13 venv with mongoeco[wire]==4.11.0 and execs this file.

    python mongo-test-server.py [--port 0]

binds 127.0.0.1 only (port 0 = pick a free one), prints exactly one line
"mongoeco listening on 127.0.0.1:PORT" to stdout (flushed) once it accepts connections,
then serves until SIGTERM/SIGINT and exits 0.  Connect with
mongodb://127.0.0.1:PORT/?directConnection=true and use one database per test.
All data lives in memory (the sqlite engine fails transactions) and is lost on exit.

Patches (small, applied to mongoeco.wire.executor.WireCommandExecutor only) that adapt
mongoeco 4.11.0 to the Rust `mongodb` 3.x driver:

1. Incoming Int64 options.  mongoeco decodes a BSON Int64 into its BsonInt64 wrapper, which is
   not a Python int, and its command validation then rejects options the Rust driver always
   sends as Int64: find/count `skip`/`limit`/`batchSize`/`maxTimeMS` ("wire find limit must
   be a non-negative integer"), the `getMore` cursor id, `killCursors` ids, `cursor.batchSize`
   of aggregate/listIndexes/listCollections, `expireAfterSeconds` in index specs.
   _normalize_command() turns those Int64 *option* values into plain ints before the command
   is validated.  It only touches the command's own scalar options (top level, `cursor`,
   `writeConcern`, `cursors`, and the top-level scalars of each `indexes` spec); filters,
   updates and documents are left alone, so Int64 values in user data keep their BSON type.

2. Outgoing cursor ids.  mongoeco numbers cursors 1, 2, ... and a Python int that small is
   encoded as BSON Int32; the Rust driver requires `cursor.id` to be Int64 (error at key
   "id").  fix_cursor_id() re-types `cursor.id` of every reply as bson.Int64.

3. Error replies without a code.  Many mongoeco errors (unsupported command, bad option shape)
   come back as {ok: 0, errmsg} with no `code`; the Rust driver then fails to parse the reply
   ("invalid reply ... missing field `code`") and the real message is lost.  add_error_code()
   gives such replies code 8 (UnknownError), keeping errmsg, as a real server always has a code.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import signal
import sys

EXPECTED_MONGOECO = "4.11.0"


def _import_mongoeco():
    try:
        import bson  # installed by mongoeco[wire] (pymongo)
        import mongoeco
        from mongoeco.core.bson_scalars import BsonInt64
        from mongoeco.engines.memory import MemoryEngine
        from mongoeco.wire import AsyncMongoEcoProxyServer
        from mongoeco.wire.executor import WireCommandExecutor
    except ImportError as error:
        sys.exit(
            f"mongo-test-server: cannot import mongoeco[wire] ({error}); "
            "run scripts/mongo-test-server.sh, which installs it"
        )
    version = getattr(mongoeco, "__version__", "?")
    if version != EXPECTED_MONGOECO:
        print(
            f"mongo-test-server: warning: mongoeco {version} installed, the patches "
            f"below were written for {EXPECTED_MONGOECO}",
            file=sys.stderr,
        )
    return bson, BsonInt64, MemoryEngine, AsyncMongoEcoProxyServer, WireCommandExecutor


def install_patches(bson, BsonInt64, WireCommandExecutor) -> None:
    def plain(value):
        return value.value if isinstance(value, BsonInt64) else value

    def plain_scalars(mapping) -> None:
        # Only the mapping's own scalar values; nested documents are not entered.
        if isinstance(mapping, dict):
            for key, value in mapping.items():
                if isinstance(value, BsonInt64):
                    mapping[key] = value.value

    def normalize_command(body) -> None:
        # Patch 1: the command's own Int64 options -> int (see the module docstring).
        if not isinstance(body, dict):
            return
        plain_scalars(body)  # skip, limit, batchSize, maxTimeMS, getMore id, ...
        plain_scalars(body.get("cursor"))  # {cursor: {batchSize}}
        plain_scalars(body.get("writeConcern"))  # {w, wtimeout}
        if isinstance(body.get("cursors"), list):  # killCursors
            body["cursors"] = [plain(cursor_id) for cursor_id in body["cursors"]]
        if isinstance(body.get("indexes"), list):  # createIndexes: expireAfterSeconds, ...
            for spec in body["indexes"]:
                plain_scalars(spec)

    def fix_cursor_id(result):
        # Patch 2: cursor ids always go out as BSON Int64.
        if isinstance(result, dict):
            cursor = result.get("cursor")
            if isinstance(cursor, dict):
                cursor_id = cursor.get("id")
                if isinstance(cursor_id, int) and not isinstance(cursor_id, bool):
                    cursor["id"] = bson.Int64(cursor_id)
        return result

    def add_error_code(document):
        # Patch 3: every {ok: 0} reply carries a code.
        if isinstance(document, dict) and not document.get("ok") and "code" not in document:
            document["code"] = 8
            document.setdefault("codeName", "UnknownError")
        return document

    # These methods exist in mongoeco 4.11.0; fail loudly if a later version renamed them.
    build = WireCommandExecutor._build_request_context
    execute = WireCommandExecutor.execute_prepared
    error_document = WireCommandExecutor.error_document  # a staticmethod

    @functools.wraps(build)
    def _build_request_context(self, body, *args, **kwargs):
        normalize_command(body)
        return build(self, body, *args, **kwargs)

    @functools.wraps(execute)
    async def execute_prepared(self, context):
        return fix_cursor_id(await execute(self, context))

    @functools.wraps(error_document)
    def _error_document(exc):
        return add_error_code(error_document(exc))

    WireCommandExecutor._build_request_context = _build_request_context
    WireCommandExecutor.execute_prepared = execute_prepared
    WireCommandExecutor.error_document = staticmethod(_error_document)


async def serve(port: int) -> None:
    bson, BsonInt64, MemoryEngine, AsyncMongoEcoProxyServer, WireCommandExecutor = (
        _import_mongoeco()
    )
    install_patches(bson, BsonInt64, WireCommandExecutor)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    server = AsyncMongoEcoProxyServer(engine=MemoryEngine(), host="127.0.0.1", port=port)
    address = await server.start()  # listening once this returns
    try:
        print(f"mongoeco listening on {address.host}:{address.port}", flush=True)
        await stop.wait()
    finally:
        await server.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0 = any free)")
    args = parser.parse_args()
    if not 0 <= args.port <= 65535:
        parser.error("--port must be 0..65535")
    asyncio.run(serve(args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
