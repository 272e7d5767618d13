"""A TCP proxy on loopback that delays every request by a fixed latency, as a registry across the internet
is away: each chunk a client sends waits `latency` seconds before it goes on (an HTTP request is one chunk),
answers flow back at once."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from types import TracebackType


class SlowProxy:
    def __init__(self, upstream: str, latency: float) -> None:
        host, _, port = upstream.rpartition(":")
        self.upstream = (host, int(port))
        self.latency = latency
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.host = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._accept, name="slow-proxy", daemon=True)
        self._sockets: list[socket.socket] = []

    def __enter__(self) -> SlowProxy:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self._thread.join(timeout=5)
        for sock in self._sockets:
            sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            self._sockets += [client, upstream]
            for source, sink, delay in ((client, upstream, self.latency), (upstream, client, 0.0)):
                threading.Thread(target=_pipe, args=(source, sink, delay), daemon=True).start()


def _pipe(source: socket.socket, sink: socket.socket, delay: float) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            if delay:
                time.sleep(delay)
            sink.sendall(data)
    for sock in (source, sink):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
