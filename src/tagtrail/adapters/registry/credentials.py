"""One place that finds the credentials for a registry.

Looked up in this order, first match wins:
1. what tagtrail.yaml says for that registry (`credentials:`): `env:PREFIX` (PREFIX_USERNAME and
   PREFIX_PASSWORD), `file:PATH` (a docker config.json, or the `.dockerconfigjson` of a Kubernetes
   pull secret mounted as a file), `anonymous`, or `docker` (the default: the chain below);
2. docker's config.json (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`): `credHelpers` for
   the registry, `auths` (`auth` or `username`/`password`, `identitytoken`), then `credsStore`;
3. the containers auth file podman, skopeo and buildah write (`$REGISTRY_AUTH_FILE`,
   `$XDG_RUNTIME_DIR/containers/auth.json`, `~/.config/containers/auth.json`);
4. none: the registry is read anonymously.

A secret is held in `Secret`, whose repr and str never show it; errors name the file and registry only.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tagtrail.errors import RegistryAuthError

_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io")


class Secret:
    """A password or token. Shown as '***' everywhere; `reveal()` is the only way to the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True)
class Credentials:
    """A username and password (or an identity token, for registries that hand out refresh tokens)."""

    username: str
    password: Secret
    source: str
    identity_token: Secret | None = None


class CredentialResolver:
    """Resolves credentials per registry host. `specs` maps a host to its `credentials:` setting."""

    def __init__(self, specs: Mapping[str, str] | None = None, env: Mapping[str, str] | None = None) -> None:
        self._specs = dict(specs or {})
        self._env = os.environ if env is None else env
        self._cache: dict[str, Credentials | None] = {}

    def resolve(self, registry: str) -> Credentials | None:
        """Credentials for `registry` (host[:port] as in image references), or None for anonymous."""
        if registry not in self._cache:
            self._cache[registry] = self._lookup(registry)
        return self._cache[registry]

    def _lookup(self, registry: str) -> Credentials | None:
        spec = self._specs.get(registry, "docker")
        if spec == "anonymous":
            return None
        if spec.startswith("env:"):
            return self._from_env(registry, spec[4:])
        if spec.startswith("file:"):
            path = Path(spec[5:]).expanduser()
            found = _from_config_file(path, registry, self._env, required=True)
            if found is None:
                raise RegistryAuthError(registry, None, f"{path} has no credentials for {registry}")
            return found
        for path in self._docker_configs():
            found = _from_config_file(path, registry, self._env, required=False)
            if found is not None:
                return found
        return None

    def _from_env(self, registry: str, prefix: str) -> Credentials:
        user, password = self._env.get(f"{prefix}_USERNAME"), self._env.get(f"{prefix}_PASSWORD")
        if not user or not password:
            raise RegistryAuthError(
                registry,
                None,
                f"credentials come from env:{prefix}, but {prefix}_USERNAME or {prefix}_PASSWORD is unset",
            )
        return Credentials(user, Secret(password), f"env:{prefix}")

    def _docker_configs(self) -> list[Path]:
        home = Path(self._env.get("HOME") or Path.home())
        docker_dir = Path(self._env["DOCKER_CONFIG"]) if self._env.get("DOCKER_CONFIG") else home / ".docker"
        paths = [docker_dir / "config.json"]
        if self._env.get("REGISTRY_AUTH_FILE"):
            paths.append(Path(self._env["REGISTRY_AUTH_FILE"]))
        if self._env.get("XDG_RUNTIME_DIR"):
            paths.append(Path(self._env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
        config_home = (
            Path(self._env["XDG_CONFIG_HOME"]) if self._env.get("XDG_CONFIG_HOME") else home / ".config"
        )
        paths.append(config_home / "containers" / "auth.json")
        return paths


def _keys_for(registry: str) -> list[str]:
    keys = [
        registry,
        f"https://{registry}",
        f"http://{registry}",
        f"https://{registry}/v1/",
        f"https://{registry}/v2/",
    ]
    if registry == "docker.io":
        keys += list(_HUB_KEYS)
    return keys


def _from_config_file(
    path: Path, registry: str, env: Mapping[str, str], *, required: bool
) -> Credentials | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if required:
            raise RegistryAuthError(registry, None, f"credentials file {path} does not exist") from None
        return None
    except OSError as exc:
        raise RegistryAuthError(
            registry, None, f"cannot read credentials file {path}: {exc.strerror}"
        ) from None
    try:
        data = json.loads(text)
    except ValueError:
        raise RegistryAuthError(registry, None, f"credentials file {path} is not valid JSON") from None
    if not isinstance(data, dict):
        raise RegistryAuthError(registry, None, f"credentials file {path} is not a JSON object")
    helpers = _object(data.get("credHelpers"))
    for key in _keys_for(registry):
        if isinstance(helpers.get(key), str):
            return _from_helper(helpers[key], registry, key, env)
    auths = _object(data.get("auths"))
    for key in _keys_for(registry):
        entry = auths.get(key)
        if isinstance(entry, dict):
            found = _from_auth_entry(entry, registry, path)
            if found is not None:
                return found
    if isinstance(data.get("credsStore"), str) and data["credsStore"]:
        return _from_helper(data["credsStore"], registry, registry, env)
    return None


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _from_auth_entry(entry: dict[str, Any], registry: str, path: Path) -> Credentials | None:
    source = f"{path}"
    identity = entry.get("identitytoken")
    if isinstance(entry.get("auth"), str) and entry["auth"]:
        try:
            user, sep, password = base64.b64decode(entry["auth"], validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise RegistryAuthError(
                registry, None, f"the 'auth' entry for {registry} in {path} is not base64 of user:password"
            ) from None
        if not sep:
            raise RegistryAuthError(
                registry,
                None,
                f"the 'auth' entry for {registry} in {path} has no ':' between user and password",
            )
    elif isinstance(entry.get("username"), str) and isinstance(entry.get("password"), str):
        user, password = entry["username"], entry["password"]
    elif isinstance(identity, str) and identity:
        user, password = "<token>", ""
    else:
        return None
    token = Secret(identity) if isinstance(identity, str) and identity else None
    return Credentials(user, Secret(password), source, token)


def _from_helper(helper: str, registry: str, server: str, env: Mapping[str, str]) -> Credentials | None:
    """Ask `docker-credential-<helper> get`, docker's credential helper protocol."""
    program = shutil.which(f"docker-credential-{helper}", path=env.get("PATH"))
    if program is None:
        raise RegistryAuthError(
            registry,
            None,
            f"docker's config names the credential helper '{helper}', but docker-credential-{helper} is not on PATH",
        )
    try:
        result = subprocess.run(
            [program, "get"],
            input=server,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env=dict(env),
        )
    except subprocess.TimeoutExpired:
        raise RegistryAuthError(
            registry, None, f"docker-credential-{helper} did not answer within 30 s"
        ) from None
    if result.returncode != 0:
        if "credentials not found" in (result.stdout + result.stderr).lower():
            return None
        raise RegistryAuthError(
            registry, None, f"docker-credential-{helper} failed (exit {result.returncode})"
        )
    try:
        data = json.loads(result.stdout)
        user, secret = str(data["Username"]), str(data["Secret"])
    except (ValueError, KeyError, TypeError):
        raise RegistryAuthError(
            registry, None, f"docker-credential-{helper} answered something that is not its JSON"
        ) from None
    if user == "<token>":
        return Credentials(user, Secret(""), f"docker-credential-{helper}", Secret(secret))
    return Credentials(user, Secret(secret), f"docker-credential-{helper}")
