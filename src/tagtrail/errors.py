"""The exceptions tagtrail raises, all rooted at `TagtrailError`.

    TagtrailError                 anything the user can act on; the CLI prints its message as one line
    ├── ConfigError               tagtrail.yaml is missing, unreadable or invalid (carries file:line:column)
    ├── SchemeError               a tag template cannot be compiled, or a tag cannot be formatted from it
    ├── InvalidReference          text that is not an image reference (`host/path:tag@digest`)
    ├── RefsError                 a deploy file cannot be read or rewritten safely; nothing was written
    ├── PinEditError              deploy.pins in tagtrail.yaml cannot be edited safely
    ├── GitError                  a git command failed or the work tree is not in the state asked for
    ├── RegistryError             a registry could not be read, or answered something malformed
    │   ├── RegistryAuthError     credentials missing, refused, or not allowed this repository (401/403)
    │   └── RegistryNotFound      no such repository, tag or digest (404)
    ├── GitHubError               GitHub's API refused a request or could not be reached (pull requests)
    ├── SandboxError              a local component (registry, git server) could not be started
    └── KubeError                 the Kubernetes API could not be reached or refused a request
        ├── KubeConflict          a workload changed since it was read; read and decide again
        └── NotLeader             another replica holds the Lease: this one writes nothing

Library errors (subprocess, YAML, pydantic) are translated into these at the boundary where they occur and
chained with ``from``; a raw library exception reaching the user is a bug. Messages never carry secrets.
"""

from __future__ import annotations

from dataclasses import dataclass


class TagtrailError(Exception):
    """Root of every error tagtrail raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a config file, located as precisely as the YAML parser allows."""

    path: str
    line: int | None
    column: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = self.path
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        field = f"{self.field}: " if self.field else ""
        return f"{where}: {field}{self.message}"


class ConfigError(TagtrailError):
    """The config file is missing, unreadable or invalid. `problems` lists each issue with its location."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class SchemeError(TagtrailError):
    """A tag template cannot be compiled, or a tag cannot be formatted from the values given."""


class InvalidReference(TagtrailError, ValueError):
    """Not an image reference; the message says which part is wrong."""


class RefsError(TagtrailError):
    """A deploy file cannot be read or rewritten safely; nothing was written."""


class PinEditError(TagtrailError):
    """deploy.pins in tagtrail.yaml cannot be edited without risking the rest of the file."""


class GitError(TagtrailError):
    """A git command failed, or the repository is not in the state an operation needs."""


class RegistryError(TagtrailError):
    """A registry could not be read, or what it answered cannot be trusted (DESIGN invariant 4: such a read
    never leads to a write). `transient` says whether trying again later may help (timeouts, 5xx, 429)."""

    def __init__(
        self, registry: str, repository: str | None, message: str, *, transient: bool = False
    ) -> None:
        self.registry = registry
        self.repository = repository
        self.transient = transient
        where = f"{registry}/{repository}" if repository else registry
        super().__init__(f"registry {where}: {message}")


class RegistryAuthError(RegistryError):
    """The registry refused the credentials, or has none for us and wants some."""


class RegistryNotFound(RegistryError):
    """The repository, tag or digest does not exist in the registry."""


class GitHubError(TagtrailError):
    """GitHub's API refused a request (a token without rights, a setting of the repository) or could not
    be reached. `transient`: trying again later may help (unreachable, 5xx, a rate limit not over yet)."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class SandboxError(TagtrailError):
    """A local component for the demo or the tests (a registry, a git server) could not be started."""


class KubeError(TagtrailError):
    """The Kubernetes API could not be reached or refused a request. `transient`: trying again may help
    (unreachable, timeouts, 5xx); a refused credential or a forbidden verb needs a person."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class KubeConflict(KubeError):
    """A workload changed since it was read (a patch's `test` failed, or it is gone): read and decide again."""


class NotLeader(KubeError):
    """More than one replica runs and this one does not hold the Lease (or could not renew it in time).
    Transient: the Lease may come back to this replica, so a reconcile that met it backs off and tries again."""

    def __init__(self, message: str, *, transient: bool = True) -> None:
        super().__init__(message, transient=transient)
