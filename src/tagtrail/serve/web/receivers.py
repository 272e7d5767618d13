"""The webhook receivers: POST /hooks/registry, /hooks/github and /hooks/generic.

Every request goes the same way: read with a size cap, authenticated, parsed, and passed to the
controller as a hint. Only refused requests are counted against their sender (a sender over its budget of
refusals gets 429 instead of 401); a request that authenticates is never throttled, so a burst of valid
deliveries behind an ingress (one IP for all of GitHub) always gets through. Hints are hints (a webhook only says "look again"; the policy decides). Each outcome
is counted in the metrics and refusals are logged with the reason, never with the payload.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from functools import partial

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tagtrail.errors import TagtrailError
from tagtrail.serve.controller import Controller
from tagtrail.serve.web import hooks

log = logging.getLogger("tagtrail.web")


class TooLarge(TagtrailError):
    """A webhook body over the size cap."""


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (before reading it all) one larger than `limit`."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


class Receivers:
    """The webhook routes, bound to one controller; the secrets are read from `env` at each request."""

    def __init__(self, controller: Controller, env: Mapping[str, str]) -> None:
        self.controller = controller
        self.env = env
        self.replays = hooks.ReplayGuard()
        rate = controller.config.serve.webhooks.rate
        self.limiter = hooks.RateLimiter(rate, burst=10 * rate)

    async def _hook(
        self,
        request: Request,
        source: str,
        check: Callable[[bytes], None],
        parse: Callable[[bytes], list[hooks.Push]],
    ) -> Response:
        """Rate limit, read (size-capped), authenticate, parse, hint; every outcome counted, no payload logged."""
        client = request.client.host if request.client else "?"
        settings = self.controller.config.serve.webhooks
        outcome, status, detail = "accepted", 202, ""
        apps: list[str] = []
        ignored = 0
        key = f"{source}:{client}"
        try:
            try:
                body = await read_body(request, settings.max_body)
                check(body)
            except (TooLarge, hooks.HookError) as exc:
                if not isinstance(exc, hooks.HookError) or exc.status == 401:
                    self._limit(key)  # over its budget of refusals: 429, whatever this one was
                raise
            for push in parse(body):
                app = await self.controller.hint(push.image, push.tag, source)
                if app is None:
                    ignored += 1
                elif app not in apps:
                    apps.append(app)
            if not apps:
                outcome = "ignored"
        except TooLarge:
            outcome, status, detail = "too_large", 413, f"the body is larger than {settings.max_body} bytes"
        except hooks.HookError as exc:
            status, detail = exc.status, str(exc)
            outcome = {401: "unauthorized", 409: "replayed", 429: "rate_limited", 503: "disabled"}.get(
                exc.status, "bad_request"
            )
        if status in (401, 413):  # a refusal before authentication counts against the sender
            self.limiter.charge(key)
        self.controller.metrics.webhooks.labels(source, outcome).inc()
        if status >= 400:
            log.warning("webhook %s from %s refused (%d): %s", source, client, status, detail)
            return JSONResponse({"error": detail}, status_code=status)
        return JSONResponse({"apps": apps, "ignored": ignored}, status_code=status)

    def _limit(self, key: str) -> None:
        rate = self.controller.config.serve.webhooks.rate
        if self.limiter.rate != rate:  # the config was reloaded with another rate
            self.limiter = hooks.RateLimiter(rate, burst=10 * rate)
        if self.limiter.blocked(key):
            raise hooks.HookError(
                429, "too many refused webhook requests from this client; wait and fix them"
            )

    def _secret(self, name: str, what: str) -> str:
        secret = self.env.get(name)
        if not secret:
            raise hooks.HookError(503, f"the {what} webhook is off: set {name} in tagtrail's environment")
        return secret

    async def registry_hook(self, request: Request) -> Response:
        settings = self.controller.config.serve.webhooks.registry

        def check(body: bytes) -> None:
            secret = self._secret(settings.secret_env, "registry")
            given = request.headers.get(settings.header)
            if not (hooks.secret_ok(secret, given) or hooks.secret_ok(secret, hooks.bearer(given))):
                raise hooks.HookError(401, f"missing or wrong secret in the {settings.header} header")

        return await self._hook(request, "registry", check, hooks.distribution_pushes)

    async def github_hook(self, request: Request) -> Response:
        settings = self.controller.config.serve.webhooks.github
        event = request.headers.get("x-github-event", "")

        def check(body: bytes) -> None:
            secret = self._secret(settings.secret_env, "GitHub")
            if not hooks.github_signature_ok(secret, body, request.headers.get("x-hub-signature-256")):
                raise hooks.HookError(401, "missing or wrong X-Hub-Signature-256")
            delivery = request.headers.get("x-github-delivery")
            if not delivery:
                raise hooks.HookError(400, "no X-GitHub-Delivery header")
            # the delivery id is not signed: the same signed body sent again under a new id is a replay too
            signed = "body:" + hashlib.sha256(body).hexdigest()
            if not self.replays.first_time(delivery) or not self.replays.first_time(signed):
                raise hooks.HookError(
                    409, f"delivery {delivery[:64]} (or its signed body) was already received"
                )

        return await self._hook(request, "github", check, partial(hooks.github_pushes, event))

    async def generic_hook(self, request: Request) -> Response:
        settings = self.controller.config.serve.webhooks.generic

        def check(body: bytes) -> None:
            token = self._secret(settings.token_env, "generic")
            if not hooks.secret_ok(token, hooks.bearer(request.headers.get("authorization"))):
                raise hooks.HookError(401, "missing or wrong bearer token")

        return await self._hook(request, "generic", check, lambda body: [hooks.generic_push(body)])
