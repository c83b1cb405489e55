"""A TCP proxy a test controls, to cut a shared server off without stopping it.

    async with TcpProxy("127.0.0.1", 5672) as proxy:
        url = f"amqp://guest:guest@127.0.0.1:{proxy.port}/?reconnect_interval=0.2"
        ...
        proxy.cut()      # every live connection is dropped; new ones are refused
        ...
        proxy.restore()  # connections are accepted (and forwarded) again

The broker and the database are shared by every test run on the machine: a test never
stops them. It points the code under test at this proxy instead and cuts the proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType

_CHUNK = 64 * 1024


class TcpProxy:
    """Forward ``127.0.0.1:<port>`` to ``target_host:target_port``, one upstream connection
    per client connection, until :meth:`cut`."""

    def __init__(self, target_host: str, target_port: int, *, host: str = "127.0.0.1", port: int = 0):
        self.target = (target_host, target_port)
        self.host = host
        self.port = port
        self.is_cut = False
        self.accepted = 0  # client connections forwarded since start
        self.refused = 0  # client connections dropped because the proxy was cut
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> TcpProxy:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # --- control -----------------------------------------------------------------------------

    def cut(self) -> None:
        """Drop every live connection at once (as a network failure would) and refuse new
        ones: a connection attempt is accepted and reset immediately, so the client sees the
        server vanish rather than hang."""
        self.is_cut = True
        for link in list(self._links):
            link.drop()
        self._links.clear()

    def restore(self) -> None:
        """Forward new connections again (dropped ones stay dropped: clients reconnect)."""
        self.is_cut = False

    @property
    def live_connections(self) -> int:
        return len(self._links)

    # --- forwarding --------------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.is_cut:
            self.refused += 1
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        if self.is_cut:  # cut while we were connecting upstream
            self.refused += 1
            up_writer.transport.abort()
            writer.transport.abort()
            return
        self.accepted += 1
        link = _Link(writer, up_writer)
        self._links.add(link)
        link.tasks = [
            asyncio.create_task(self._pump(reader, up_writer, link)),
            asyncio.create_task(self._pump(up_reader, writer, link)),
        ]

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: _Link) -> None:
        try:
            while data := await reader.read(_CHUNK):
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            # One side ended: end the other too, as a plain TCP relay would.
            self._links.discard(link)
            link.drop()


class _Link:
    def __init__(self, client: asyncio.StreamWriter, upstream: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream = upstream
        self.tasks: list[asyncio.Task[None]] = []

    def drop(self) -> None:
        for writer in (self.client, self.upstream):
            with contextlib.suppress(Exception):
                writer.transport.abort()
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current:
                task.cancel()
