"""The gRPC port of one local deployment: a byte relay to its replicas' Unix sockets.

A serving replica runs in a sandbox with no network of its own and answers REST on the
listening socket it inherits. gRPC cannot serve an inherited socket, so each replica serves the
Open Inference Protocol's gRPC service on a Unix socket in the deployment's `grpc/` folder
(bound into its sandbox), and this process, started by the deployment's supervisor with the
deployment's gRPC listening socket, relays each connection whole to one of those sockets in
turn. The supervisor removes a replica's socket file before draining it, so new connections
only reach replicas that stay; a socket no replica answers any more is skipped.

`python -m deployments.runtimes.grpc_relay --listen-fd N --sockets FOLDER`
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import signal
import socket
from pathlib import Path

SOCKET_SUFFIX = ".sock"
CHUNK_BYTES = 65536


class Relay:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.turn = itertools.count()

    def candidates(self) -> list[Path]:
        """The replicas' sockets, starting from the next one in turn (round robin)."""
        sockets = sorted(self.folder.glob(f"*{SOCKET_SUFFIX}"))
        if not sockets:
            return []
        start = next(self.turn) % len(sockets)
        return sockets[start:] + sockets[:start]

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        for path in self.candidates():
            with contextlib.suppress(OSError):
                return await asyncio.open_unix_connection(str(path))
        return None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream = await self.connect()
        if upstream is None:
            # No replica serves: the client sees the connection close (gRPC: UNAVAILABLE).
            writer.close()
            return
        up_reader, up_writer = upstream
        copies = [
            asyncio.ensure_future(_copy(reader, up_writer)),
            asyncio.ensure_future(_copy(up_reader, writer)),
        ]
        # HTTP/2 does not half-close: once either side ends, the connection is over.
        await asyncio.wait(copies, return_when=asyncio.FIRST_COMPLETED)
        for task in copies:
            task.cancel()
        for stream in (writer, up_writer):
            stream.close()


async def _copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await source.read(CHUNK_BYTES):
            sink.write(data)
            await sink.drain()


async def serve(listen_fd: int, folder: Path) -> None:
    # Socket paths are limited to 107 bytes: they are named relative to their folder.
    os.chdir(folder)
    relay = Relay(Path("."))
    listener = socket.socket(fileno=listen_fd)
    server = await asyncio.start_server(relay.handle, sock=listener)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deployments.runtimes.grpc_relay")
    parser.add_argument("--listen-fd", type=int, required=True)
    parser.add_argument("--sockets", type=Path, required=True)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.listen_fd, args.sockets))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
