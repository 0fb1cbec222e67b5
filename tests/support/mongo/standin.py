"""A MongoDB wire-protocol stand-in for the usage-mongo integration tests.

No mongod package and no Docker engine exist on the project's machines, so the tests talk to
`mongoeco` (PyPI), an in-memory server that answers real MongoDB drivers over TCP. This script
starts it, corrects the one reply shape the Rust driver rejects, announces the URI, and serves
until it receives SIGTERM or SIGINT.

    python standin.py [--host 127.0.0.1] [--port 0] [--uri-file PATH]
    python standin.py --check URI      # exit 0 when a server at URI answers `ping`

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


def announce(uri: str, uri_file: str | None) -> None:
    """Prints the URI, or writes it atomically so a reader never sees half a line."""
    if uri_file is None:
        print(uri, flush=True)
        return
    directory = os.path.dirname(os.path.abspath(uri_file))
    with tempfile.NamedTemporaryFile("w", dir=directory, delete=False) as partial:
        partial.write(uri + "\n")
    os.replace(partial.name, uri_file)


async def serve(host: str, port: int, uri_file: str | None) -> None:
    from mongoeco.wire import AsyncMongoEcoProxyServer

    coerce_cursor_ids_to_int64()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    async with AsyncMongoEcoProxyServer(host=host, port=port, engine=None) as server:
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
    parser.add_argument("--check", metavar="URI", help="only ping the server at URI")
    args = parser.parse_args()
    if args.check:
        return check(args.check)
    asyncio.run(serve(args.host, args.port, args.uri_file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
