"""One request to GitHub's API: the token sent and never shown, a rate limit waited out once, and every
refusal translated into one line that says what to grant or change (`GitHubError`)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from tagtrail.adapters.registry import Secret
from tagtrail.errors import GitHubError

MESSAGE_CAP = 300
MAX_WAIT = 900.0  # a rate limit that ends later than this is a retry of the whole reconcile, not a wait
PERMISSIONS = "a fine-grained token needs Contents and Pull requests: read and write (and Metadata: read)"
Sleep = Callable[[float], Awaitable[None]]


class Client:
    """GitHub's REST and GraphQL API for one repository, as one token."""

    def __init__(
        self,
        api_url: str,
        repository: str,
        token: Secret,
        token_env: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.api_url, self.repository, self.token_env = api_url.rstrip("/"), repository, token_env
        self.sleep, self.clock = sleep, clock
        self._http = httpx.AsyncClient(
            timeout=30,
            transport=transport,
            headers={
                "Accept": "application/vnd.github+json",
                "Authorization": f"Bearer {token.reveal()}",
                "X-GitHub-Api-Version": "2022-11-28",
                "User-Agent": "tagtrail",
            },
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def rest(self, method: str, path: str, doing: str, **kwargs: Any) -> Any:
        """`method` on `/repos/{repository}{path}`; its JSON. `doing` says what for, in errors."""
        response = await self._send(method, f"/repos/{self.repository}{path}", doing, **kwargs)
        if response.status_code >= 400:
            raise self._refused(response, doing)
        return response.json() if response.content else None

    async def graphql(self, query: str, variables: dict[str, Any], doing: str) -> Any:
        """A GraphQL query; its `data`. GraphQL's own errors (answered 200) are refusals too."""
        url = self.api_url.removesuffix("/v3") + "/graphql" if self.api_url.endswith("/api/v3") else None
        response = await self._send(
            "POST", url or "/graphql", doing, json={"query": query, "variables": variables}
        )
        if response.status_code >= 400:
            raise self._refused(response, doing)
        answer = response.json()
        errors = answer.get("errors") if isinstance(answer, dict) else None
        if errors:
            raise GitHubError(f"GitHub refused to {doing} in {self.repository}: {_said(errors[0])}")
        return answer.get("data")

    async def _send(self, method: str, path: str, doing: str, **kwargs: Any) -> httpx.Response:
        url = path if path.startswith("http") else self.api_url + path
        waited = False
        while True:
            try:
                response = await self._http.request(method, url, **kwargs)
            except httpx.HTTPError as exc:
                raise GitHubError(
                    f"GitHub ({self.api_url}) could not be reached to {doing}: {type(exc).__name__}",
                    transient=True,
                ) from None
            wait = self._limited(response)
            if wait is None:
                return response
            if waited or wait > MAX_WAIT:
                raise GitHubError(
                    f"GitHub's rate limit for this token is used up (HTTP {response.status_code}) and"
                    f" ends in {wait:.0f} s; tagtrail tries again then",
                    transient=True,
                )
            waited = True  # waited out once: a second limit is the next reconcile's
            await self.sleep(wait)

    def _limited(self, response: httpx.Response) -> float | None:
        """Seconds until a rate limit ends, or None when the response is not one."""
        if response.status_code not in (403, 429):
            return None
        headers = response.headers
        after = headers.get("retry-after", "").strip()
        if after.isdigit():
            return float(after)
        if headers.get("x-ratelimit-remaining") == "0" and headers.get("x-ratelimit-reset", "").isdigit():
            return max(0.0, float(headers["x-ratelimit-reset"]) - self.clock()) + 1
        if response.status_code == 429:
            return 60.0  # GitHub's advice for a secondary limit that names no time
        return None

    def _refused(self, response: httpx.Response, doing: str) -> GitHubError:
        said, status = _message(response), response.status_code
        where = f"{self.repository} ({self.api_url})"
        if status == 401:
            return GitHubError(
                f"GitHub refused the token in ${self.token_env} ({said}) to {doing}: give tagtrail a valid"
                f" token; {PERMISSIONS}"
            )
        if status == 403:
            return GitHubError(
                f"the token in ${self.token_env} may not {doing} in {where} ({said}): {PERMISSIONS}"
            )
        if status == 404:
            return GitHubError(
                f"GitHub knows no {doing.split(' ', 1)[-1]} in {where}, or the token in"
                f" ${self.token_env} cannot see it ({said}): check deploy.git.pull_request.repository;"
                f" {PERMISSIONS}"
            )
        return GitHubError(
            f"GitHub refused to {doing} in {where} (HTTP {status}): {said}", transient=status >= 500
        )


def _message(response: httpx.Response) -> str:
    try:
        found = json.loads(response.content)
    except ValueError:
        found = None
    text = _said(found) if isinstance(found, dict) else response.text
    return " ".join(text.split())[:MESSAGE_CAP] or "no message"


def _said(error: Any) -> str:
    """GitHub's message, with the first of its `errors` where it gives them (422's detail is there)."""
    if not isinstance(error, dict):
        return str(error)[:MESSAGE_CAP]
    message = str(error.get("message") or "")
    details = error.get("errors")
    if isinstance(details, list) and details and isinstance(details[0], dict):
        detail = details[0].get("message")
        if detail:
            message = f"{message}: {detail}" if message else str(detail)
    return message[:MESSAGE_CAP]
