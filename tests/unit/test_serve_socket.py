"""The socket `tagtrail serve` listens on gives connections with Nagle's algorithm off.

With it on, a response written in two parts (headers, then body, as uvicorn writes them) waits for the
client's delayed ACK: about 40 ms per request on a kept-alive connection, for every probe, webhook and page.
asyncio disables it only on sockets that declare themselves TCP, so the listening socket must.
"""

from __future__ import annotations

import asyncio
import socket

from tagtrail.cli.serve_cmd import _listen


def test_connections_to_the_serve_socket_disable_nagle() -> None:
    async def accepted_nodelay() -> int:
        sock = _listen("127.0.0.1", 0)
        seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        class Protocol(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                conn = transport.get_extra_info("socket")
                seen.set_result(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        server = await asyncio.get_running_loop().create_server(Protocol, sock=sock)
        try:
            _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
            value = await asyncio.wait_for(seen, 5)
            writer.close()
            await writer.wait_closed()
            return value
        finally:
            server.close()
            await server.wait_closed()

    assert asyncio.run(accepted_nodelay()) != 0
