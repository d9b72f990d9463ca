"""The transport floor: a bare ``websockets`` server that broadcasts a stored payload.

Usage: ``python -m benchmarks.broadcast_server --port PORT``. Each connection's
first frame gets ``{"type":"welcome"}``, standing in for the chat server's
hello and welcome. Later frames are commands:

- ``{"type":"set_payload","payload":TEXT,"placeholder":MARK}`` stores a payload;
- ``{"type":"broadcast","marker":MARK2}`` sends the payload, with the
  placeholder replaced by ``MARK2``, to every connection with
  ``websockets.broadcast`` (one write per connection, no backpressure).

``GET /health`` returns 200. The server keeps the ``websockets`` defaults,
permessage-deflate included, unless ``--no-deflate`` is given. The
benchmarks pass ``--no-deflate`` unless they run with ``--deflate``, so
that the baseline compresses exactly when the chat server does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Sequence
from http import HTTPStatus

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

__all__ = ["main"]

_WELCOME = '{"type":"welcome"}'


class _Broadcaster:
    def __init__(self) -> None:
        self.connections: set[ServerConnection] = set()
        self.payload = ""
        self.placeholder = ""

    def health(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.path == "/health":
            return connection.respond(HTTPStatus.OK, "OK\n")
        return None

    async def handle(self, connection: ServerConnection) -> None:
        try:
            await connection.recv()
            await connection.send(_WELCOME)
            self.connections.add(connection)
            async for message in connection:
                text = message if isinstance(message, str) else message.decode()
                if text.startswith('{"type":"ping"'):
                    await connection.send('{"type":"pong"}')
                    continue
                command = json.loads(text)
                if command["type"] == "set_payload":
                    self.payload, self.placeholder = command["payload"], command["placeholder"]
                    await connection.send('{"type":"ok"}')
                elif command["type"] == "broadcast":
                    broadcast(
                        self.connections, self.payload.replace(self.placeholder, command["marker"])
                    )
        except ConnectionClosed:
            pass
        finally:
            self.connections.discard(connection)


async def _serve(port: int, deflate: bool) -> None:
    broadcaster = _Broadcaster()
    stop = asyncio.get_running_loop().create_future()
    for number in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(number, stop.set_result, None)
    async with serve(
        broadcaster.handle,
        "127.0.0.1",
        port,
        process_request=broadcaster.health,
        max_size=64 * 1024 * 1024,
        ping_interval=None,
        backlog=1024,
        compression="deflate" if deflate else None,
    ):
        await stop


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.broadcast_server")
    parser.add_argument("--port", type=int, required=True, help="TCP port on 127.0.0.1")
    parser.add_argument(
        "--no-deflate", action="store_true", help="refuse permessage-deflate (default: accept it)"
    )
    arguments = parser.parse_args(argv)
    asyncio.run(_serve(arguments.port, deflate=not arguments.no_deflate))
    return 0


if __name__ == "__main__":
    sys.exit(main())
