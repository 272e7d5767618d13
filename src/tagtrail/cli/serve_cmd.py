"""`tagtrail serve`: the controller, its webhooks, dashboard, /metrics and probes, in one process.

The server's modules (uvicorn, starlette, apprise, the controller) load when `serve` runs, so the other
commands start as fast as before."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tagtrail.cli import output
from tagtrail.cli.app import app, configure_logging, state
from tagtrail.cli.startup import settle
from tagtrail.errors import TagtrailError

if TYPE_CHECKING:
    from tagtrail.serve.controller import Controller

log = logging.getLogger("tagtrail.serve")


def _server(config: Any, controller: Controller) -> Any:
    """uvicorn, with tagtrail's signals: TERM/INT stop after the write in progress (exit 0), HUP reloads."""
    import uvicorn  # noqa: PLC0415 (see the module docstring)

    class Server(uvicorn.Server):
        """uvicorn, with tagtrail's signals: TERM/INT stop after the write in progress (exit 0), HUP reloads."""

        def __init__(self, config: uvicorn.Config, controller: Controller) -> None:
            super().__init__(config)
            self.controller = controller
            self._reloads: set[asyncio.Task[bool]] = set()

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._stop, sig)
            loop.add_signal_handler(signal.SIGHUP, self._reload)
            try:
                yield
            finally:
                for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                    loop.remove_signal_handler(sig)

        def _stop(self, sig: int) -> None:
            if self.should_exit and sig == signal.SIGINT:
                self.force_exit = True
            log.info("stopping (%s): the write in progress, if any, finishes first", signal.Signals(sig).name)
            self.should_exit = True
            self.controller.closing.set()

        def _reload(self) -> None:
            log.info("SIGHUP: reloading %s", self.controller.config_path)
            task = asyncio.get_running_loop().create_task(self.controller.reload())
            self._reloads.add(task)  # held until done, so the task is not collected midway
            task.add_done_callback(self._reloads.discard)

    return Server(config, controller)


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP, not 0: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on sockets that say
    # they are TCP, and with it on, every response written in two parts waits ~40 ms for a delayed ACK
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise TagtrailError(
            f"cannot listen on {host}:{port}: {exc.strerror}; pass --port or set serve.port in tagtrail.yaml"
        ) from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


async def _serve(controller: Controller, sock: socket.socket, secure_cookies: bool | None) -> None:
    import uvicorn  # noqa: PLC0415 (see the module docstring)

    from tagtrail.serve.web.app import create_app  # noqa: PLC0415

    config = uvicorn.Config(
        create_app(controller, secure_cookies=secure_cookies),
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
        server_header=False,
    )
    settling = asyncio.create_task(_settle(controller), name="tagtrail-settle")
    try:
        await _server(config, controller).serve(sockets=[sock])
    finally:
        settling.cancel()


async def _settle(controller: Controller) -> None:
    """Once the first reconcile has read every app, what lives from start-up is frozen (`startup.settle`)."""
    events = controller.live.subscribe()
    try:
        while not controller.ready[0]:
            await events.get()
    finally:
        controller.live.unsubscribe(events)
    log.debug("settled: %d objects of start-up kept out of garbage collection", settle())


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option(help="Address to listen on. Default: serve.host (127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on. Default: serve.port (8080).")] = None,
    secure_cookies: Annotated[
        bool | None,
        typer.Option(
            "--secure-cookies/--no-secure-cookies",
            help="Send the sign-in cookie over HTTPS only (behind TLS). Default: serve.secure_cookies.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Deploy continuously: reconcile every app on an interval and within a second of a webhook, and serve
    the dashboard, /metrics, /healthz and /readyz.

    Webhooks (each is off until its secret is in the environment):

      POST /hooks/registry  the distribution registry's notifications (shared secret in a header)

      POST /hooks/github    GitHub package events, signed (X-Hub-Signature-256)

      POST /hooks/generic   {"image": "...", "tag": "..."} with a bearer token

    With leader election, replicas pass webhooks to the leader and read its decisions with
    TAGTRAIL_REPLICA_SECRET (not a webhook token), only at the address the Kubernetes API proves.

    A webhook is only a hint: the registry is read again and the policy decides. Signals: TERM or INT
    finishes the write in progress and exits 0; HUP reloads tagtrail.yaml, and a bad one keeps the running
    config (the dashboard says so).
    """
    current = state(ctx)
    config = current.config()
    path = (current.config_path or current.project_root() / "tagtrail.yaml").resolve()
    configure_logging(max(1, current.verbose), plain=not output.stderr.is_terminal)
    from tagtrail.serve.controller import Controller  # noqa: PLC0415 (see the module docstring)
    from tagtrail.serve.controller.leadership import SECRET_ENV, advertise  # noqa: PLC0415
    from tagtrail.serve.web.auth import weak_token  # noqa: PLC0415

    for env, what in (
        (config.serve.token_env, "the dashboard's actions"),
        (SECRET_ENV, "the calls between replicas"),
    ):
        weak = weak_token(os.environ.get(env))
        if weak:
            raise TagtrailError(f"{env} {weak}, or unset it to turn {what} off")

    controller = Controller(Path(path))
    host = host or config.serve.host
    port = port or config.serve.port
    sock = _listen(host, port)
    advertise(controller.elector, host, sock.getsockname()[1])
    hooks = config.serve.webhooks
    on = [
        name
        for name, env in (
            ("registry", hooks.registry.secret_env),
            ("github", hooks.github.secret_env),
            ("generic", hooks.generic.token_env),
        )
        if os.environ.get(env)
    ]
    shown = f"[{host}]" if ":" in host else host
    output.stderr.print(
        f"tagtrail serve: http://{shown}:{sock.getsockname()[1]}/ — polling every "
        f"{int(config.serve.interval.total_seconds())} s; webhooks on: {', '.join(on) or 'none'}; "
        f"actions {'on' if os.environ.get(config.serve.token_env) else f'off (set {config.serve.token_env})'}",
        highlight=False,
        markup=False,
    )
    try:
        asyncio.run(_serve(controller, sock, secure_cookies))
    finally:
        sock.close()
    output.stderr.print("tagtrail serve: stopped", highlight=False, markup=False)
