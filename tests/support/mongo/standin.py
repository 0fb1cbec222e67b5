"""A MongoDB wire-protocol stand-in for the usage-mongo integration tests.

No mongod package and no Docker engine exist on the project's machines, so the tests talk to
`mongoeco` (PyPI), an in-memory server that answers real MongoDB drivers over TCP. This script
starts it, works around the few places where it differs from MongoDB's documented behaviour
(each patch below says which), announces the URI, and serves until it receives SIGTERM or
SIGINT.

    python standin.py [--host 127.0.0.1] [--port 0] [--uri-file PATH] [--db-file PATH]
    python standin.py --check URI      # exit 0 when a server at URI answers `ping`

With --db-file the data lives in that SQLite file (mongoeco's SQLite engine) and survives a
restart, even after SIGKILL; without it the server is in memory.

Without --uri-file the URI is printed as one line on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import signal
import sys
import tempfile


def coerce_cursor_ids_to_int64() -> None:
    """Makes cursor ids BSON Int64, as real servers send them.

    mongoeco encodes small cursor ids (0 above all) as Int32; the Rust driver then rejects
    `aggregate` and `find` replies with "unexpected element type: Int32, expected: Int64".
    Wrapping the two methods that build cursor replies fixes the type without changing values.
    """
    from bson.int64 import Int64
    from mongoeco.wire.cursors import WireCursorStore

    def as_int64(reply):
        cursor = reply.get("cursor") if isinstance(reply, dict) else None
        if isinstance(cursor, dict) and isinstance(cursor.get("id"), int):
            cursor["id"] = Int64(cursor["id"])
        return reply

    def wrap(method):
        @functools.wraps(method)
        def wrapper(*args, **kwargs):
            return as_int64(method(*args, **kwargs))

        return wrapper

    WireCursorStore.materialize_command_result = wrap(WireCursorStore.materialize_command_result)
    WireCursorStore.get_more = wrap(WireCursorStore.get_more)


def plain_int(value):
    """The Python int behind mongoeco's BsonInt64 wrapper; other values unchanged."""
    from mongoeco.core.bson_scalars import BsonInt64

    return value.value if isinstance(value, BsonInt64) else value


# Top-level command options that MongoDB accepts as any integer type.
INTEGER_OPTIONS = ("limit", "skip", "batchSize", "maxTimeMS")


def accept_int64_command_options() -> None:
    """Lets `find` and friends take Int64 options, as MongoDB does.

    mongoeco decodes BSON Int64 into a wrapper object and then rejects it where it wants an
    int: `find` with `limit: Int64(1)` (what the Rust driver's `find_one` sends) fails with
    "limit must be a non-negative integer". Only top-level options are unwrapped; documents
    and filters keep their BSON types.
    """
    from mongoeco.wire.executor import WireCommandExecutor

    original = WireCommandExecutor._build_request_context

    @functools.wraps(original)
    def build(self, body, *args, **kwargs):
        if isinstance(body, dict):
            body = dict(body)
            for option in INTEGER_OPTIONS:
                if option in body:
                    body[option] = plain_int(body[option])
            cursor = body.get("cursor")
            if isinstance(cursor, dict) and "batchSize" in cursor:
                body["cursor"] = {**cursor, "batchSize": plain_int(cursor["batchSize"])}
        return original(self, body, *args, **kwargs)

    WireCommandExecutor._build_request_context = build


def emulate_coll_mod_of_ttl() -> None:
    """Answers `collMod` with `index: {name | keyPattern, expireAfterSeconds}`.

    mongoeco does not know `collMod` ("unsupported wire command: collMod"); MongoDB uses it
    to change a TTL index's `expireAfterSeconds` in place. The emulation drops the index and
    creates it again with the same specification and the new value, and replies as MongoDB
    does (`expireAfterSeconds_old`, `expireAfterSeconds_new`). Any other `collMod` is refused.
    """
    from mongoeco.errors import OperationFailure
    from mongoeco.wire.capabilities import resolve_wire_command_capability
    from mongoeco.wire.executor import WireCommandExecutor
    from mongoeco.wire.requests import WireRequestContext

    internal_keys = {"$db", "$readPreference", "$clusterTime", "lsid", "txnNumber"}
    original_build = WireCommandExecutor._build_request_context
    original_execute = WireCommandExecutor.execute_prepared

    @functools.wraps(original_build)
    def build(self, body, *, connection, db_name=None, on_normalized=None):
        if not (isinstance(body, dict) and next(iter(body), None) == "collMod"):
            return original_build(
                self, body, connection=connection, db_name=db_name, on_normalized=on_normalized
            )
        return WireRequestContext(
            db_name=db_name or body.get("$db"),
            command_name="collMod",
            command_document={k: v for k, v in body.items() if k not in internal_keys},
            raw_body=body,
            capability=resolve_wire_command_capability("collMod"),
            connection=connection,
        )

    @functools.wraps(original_execute)
    async def execute(self, context):
        if context.command_name != "collMod":
            return await original_execute(self, context)
        return await coll_mod(self._client.get_database(context.db_name), context.command_document)

    async def coll_mod(database, command):
        collection = command.get("collMod")
        index = command.get("index")
        unknown = set(command) - {"collMod", "index", "comment", "writeConcern"}
        if (
            not isinstance(collection, str)
            or not isinstance(index, dict)
            or unknown
            or "expireAfterSeconds" not in index
            or set(index) - {"name", "keyPattern", "expireAfterSeconds"}
        ):
            raise OperationFailure(
                "the stand-in's collMod only changes an index's expireAfterSeconds", code=72
            )
        listing = await database.command({"listIndexes": collection})
        specs = listing["cursor"]["firstBatch"]
        wanted_keys = index.get("keyPattern")
        spec = next(
            (
                spec
                for spec in specs
                if spec.get("name") == index.get("name")
                or (wanted_keys is not None and dict(spec.get("key", {})) == dict(wanted_keys))
            ),
            None,
        )
        if spec is None:
            raise OperationFailure(f"cannot find index {index!r} of {collection}", code=27)

        new = plain_int(index["expireAfterSeconds"])
        old = plain_int(spec.get("expireAfterSeconds"))
        if old == new:
            return {"ok": 1.0}
        recreated = {k: v for k, v in spec.items() if k not in ("v", "ns")}
        recreated["expireAfterSeconds"] = new
        await database.command({"dropIndexes": collection, "index": spec["name"]})
        await database.command({"createIndexes": collection, "indexes": [recreated]})
        reply = {"expireAfterSeconds_new": new, "ok": 1.0}
        if old is not None:
            reply = {"expireAfterSeconds_old": old, **reply}
        return reply

    WireCommandExecutor._build_request_context = build
    WireCommandExecutor.execute_prepared = execute


def give_every_error_a_code() -> None:
    """Adds the `code` that MongoDB puts in every command error.

    mongoeco leaves it out of some errors ("unsupported wire command: ..."), and the Rust
    driver then cannot read the reply at all ("missing field `code`"), which hides the
    message. Unknown commands get 59 (CommandNotFound), anything else 8 (UnknownError).
    """
    from mongoeco.wire.executor import WireCommandExecutor

    original = WireCommandExecutor.error_document

    @functools.wraps(original)
    def error_document(exc):
        document = original(exc)
        if document.get("ok") == 0 and "code" not in document:
            unsupported = "unsupported wire command" in str(document.get("errmsg", ""))
            document["code"] = 59 if unsupported else 8
            document["codeName"] = "CommandNotFound" if unsupported else "UnknownError"
        return document

    WireCommandExecutor.error_document = staticmethod(error_document)


def announce(uri: str, uri_file: str | None) -> None:
    """Prints the URI, or writes it atomically so a reader never sees half a line."""
    if uri_file is None:
        print(uri, flush=True)
        return
    directory = os.path.dirname(os.path.abspath(uri_file))
    with tempfile.NamedTemporaryFile("w", dir=directory, delete=False) as partial:
        partial.write(uri + "\n")
    os.replace(partial.name, uri_file)


async def serve(host: str, port: int, uri_file: str | None, db_file: str | None) -> None:
    from mongoeco.engines.sqlite import SQLiteEngine
    from mongoeco.wire import AsyncMongoEcoProxyServer

    coerce_cursor_ids_to_int64()
    accept_int64_command_options()
    emulate_coll_mod_of_ttl()
    give_every_error_a_code()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    engine = None if db_file is None else SQLiteEngine(path=db_file)
    async with AsyncMongoEcoProxyServer(host=host, port=port, engine=engine) as server:
        announce(server.address.uri, uri_file)
        print(f"standin: serving {server.address.uri}", file=sys.stderr, flush=True)
        await stop.wait()
    print("standin: stopped", file=sys.stderr, flush=True)


def check(uri: str) -> int:
    """Exit status 0 when the server at `uri` answers `ping` within two seconds."""
    from pymongo import MongoClient

    client = MongoClient(uri, serverSelectionTimeoutMS=2000, connectTimeoutMS=2000)
    try:
        client.admin.command("ping")
        return 0
    except Exception as error:  # any failure means "not answering yet"
        print(f"standin: {uri} does not answer: {error}", file=sys.stderr)
        return 1
    finally:
        client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--uri-file", help="write the URI here instead of stdout")
    parser.add_argument("--db-file", help="keep the data in this SQLite file, not in memory")
    parser.add_argument("--check", metavar="URI", help="only ping the server at URI")
    args = parser.parse_args()
    if args.check:
        return check(args.check)
    asyncio.run(serve(args.host, args.port, args.uri_file, args.db_file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
