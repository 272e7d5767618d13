"""Reaching the API server: lightkube's async client from the `kubernetes:` section, and every failure of a
request turned into one line that says what to do (KubeError). Credentials never reach a message: only the
server's URL, the request and the API server's own status message (which names the user, never a token).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx2
from lightkube import ApiError, AsyncClient, KubeConfig
from lightkube.core.exceptions import ConfigError as LightkubeConfigError

from tagtrail.config.kubernetes import KubernetesConfig
from tagtrail.errors import KubeError

FIELD_MANAGER = "tagtrail"


def connect(settings: KubernetesConfig) -> tuple[AsyncClient, str]:
    """A client for the cluster `settings` name, and the server's URL (for messages)."""
    try:
        if settings.kubeconfig:
            config = KubeConfig.from_file(Path(settings.kubeconfig).expanduser())
        else:
            config = KubeConfig.from_env()
        single = config.get(context_name=settings.context)
    except (LightkubeConfigError, OSError, ValueError, KeyError) as exc:
        where = settings.kubeconfig or "$KUBECONFIG, ~/.kube/config or the in-cluster service account"
        raise KubeError(
            f"kubernetes: cannot load a kubeconfig from {where}: {_first_line(exc)}; set kubernetes.kubeconfig"
            " (and kubernetes.context) to a kubeconfig that reaches the cluster"
        ) from None
    if single is None:
        raise KubeError(f"kubernetes: the kubeconfig has no context {settings.context!r}; name one it has")
    seconds = settings.timeout.total_seconds()
    client = AsyncClient(single, timeout=httpx2.Timeout(seconds), field_manager=FIELD_MANAGER)
    return client, single.cluster.server


@asynccontextmanager
async def refusals(server: str, what: str) -> AsyncIterator[None]:
    """Turns a failed request (`what`: e.g. "list deployments in shop") into a KubeError; a 404, 409 or 422
    stays an ApiError for the caller, who knows what a missing object or a conflict means there."""
    try:
        yield
    except ApiError as error:
        code = error.status.code or 0
        if code in (404, 409, 422):
            raise
        raise _refused(server, what, code, error.status.message or error.status.reason or "") from None
    except httpx2.HTTPStatusError as error:  # how lightkube fails a watch the API server refuses outright
        raise _refused(server, what, error.response.status_code, error.response.reason_phrase) from None
    except httpx2.TransportError as error:
        raise KubeError(
            f"cannot reach the Kubernetes API at {server} to {what}: {_first_line(error) or type(error).__name__};"
            " check kubernetes.kubeconfig and that the API server is up",
            transient=True,
        ) from None


def _refused(server: str, what: str, code: int, said: str) -> KubeError:
    message = _first_line(said)
    if code == 401:
        return KubeError(
            f"the Kubernetes API at {server} refused the credentials ({code} Unauthorized) to {what}:"
            " the token may have expired; renew the kubeconfig's credentials"
        )
    if code == 403:
        return KubeError(
            f"the Kubernetes API at {server} forbids tagtrail to {what}: {message}; grant it with the Role"
            " in deploy/kubernetes/"
        )
    return KubeError(
        f"the Kubernetes API at {server} failed to {what} ({code}): {message}",
        transient=code >= 500 or code == 429,
    )


def _first_line(exc: BaseException | str) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else ""
