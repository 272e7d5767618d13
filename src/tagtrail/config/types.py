"""The value types of tagtrail.yaml's schema: image templates, paths, hosts, tags, durations, intervals,
credential sources and environment variable names, each validated where it is declared."""

from __future__ import annotations

import ipaddress
import re
from datetime import timedelta
from pathlib import PurePosixPath
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
)

from tagtrail.domain.scheme import is_valid_tag

# host[:port]/path with lowercase path components, and one `{app}` placeholder somewhere in the path.
# The distribution spec's path grammar: lowercase alphanumerics joined by '.', '_', '__' or runs of '-'.
_COMPONENT = r"[a-z0-9{}]+(?:(?:[._]|__|-+)[a-z0-9{}]+)*"
_IMAGE_TEMPLATE = re.compile(rf"(?:[A-Za-z0-9.-]+(?::\d+)?/)?(?:{_COMPONENT}/)*{_COMPONENT}")
_REGISTRY_HOST = re.compile(r"(?:[A-Za-z0-9-]+\.)*[A-Za-z0-9-]+(?::\d{1,5})?|\[[0-9a-fA-F:]+\](?::\d{1,5})?")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_image_template(value: str) -> str:
    if value.count("{app}") != 1:
        raise ValueError(f"'{value}' must contain '{{app}}' exactly once, where the app's name goes")
    if re.search(r"\{(?!app\})", value.replace("{app}", "")):
        raise ValueError(f"'{value}' has a placeholder other than '{{app}}'")
    if ":" in value.rsplit("/", 1)[-1] or "@" in value:
        raise ValueError(f"'{value}' names a tag or digest; give the repository only, tagtrail picks the tag")
    if not _IMAGE_TEMPLATE.fullmatch(value):
        raise ValueError(
            f"'{value}' is not an image repository: each part of the path is lowercase letters and digits joined"
            " by '.', '_', '__' or '-' (registries refuse uppercase repository names)"
        )
    return value


def _relative_path(value: str) -> str:
    path = PurePosixPath(value)
    if path.is_absolute() or ".." in path.parts or not value.strip():
        raise ValueError(f"'{value}' must be a path inside the repository, relative to tagtrail.yaml")
    return value


def _registry_host(value: str) -> str:
    if not _REGISTRY_HOST.fullmatch(value):
        raise ValueError(
            f"'{value}' is not a registry host; write host or host:port, without a scheme or path"
        )
    return value


def is_loopback_host(host: str) -> bool:
    """Whether a host (a name, or an address, IPv6 with or without brackets; no port) is this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _pin_tag(value: str) -> str:
    if not is_valid_tag(value):
        raise ValueError(f"'{value}' is not a valid image tag")
    return value


_DURATION = re.compile(r"(\d+)\s*(ms|s|m|h|d|w)?")
_UNITS = {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: object) -> timedelta:
    """'90s', '10m', '2h', '1d' (or a number of seconds) as a timedelta; refuses anything else."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return timedelta(seconds=value)
    if isinstance(value, str):
        match = _DURATION.fullmatch(value.strip())
        if match:
            return timedelta(seconds=int(match[1]) * _UNITS[match[2]])
    raise ValueError(f"'{value}' is not a duration such as 30s, 10m, 2h or 1d")


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(lambda d: f"{int(d.total_seconds())}s", return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^\d+\s*(ms|s|m|h|d|w)?$"}),
]


def _at_least_a_second(value: timedelta) -> timedelta:
    if value < timedelta(seconds=1):
        raise ValueError("a poll interval must be at least 1s (0s would poll without pause)")
    return value


# How often something is polled: a busy loop is never what anyone meant.
Interval = Annotated[Duration, AfterValidator(_at_least_a_second)]
ImageTemplate = Annotated[str, AfterValidator(_check_image_template)]
RelativePath = Annotated[str, AfterValidator(_relative_path)]
RegistryHost = Annotated[str, AfterValidator(_registry_host)]
PinTag = Annotated[str, AfterValidator(_pin_tag)]


def _credentials_spec(value: str) -> str:
    if value in ("docker", "anonymous") or re.fullmatch(r"env:[A-Za-z_][A-Za-z0-9_]*", value):
        return value
    if value.startswith("file:") and len(value) > 5:
        return value
    raise ValueError(
        f"'{value}' is not a credentials source: use docker, anonymous, env:PREFIX (reads PREFIX_USERNAME and"
        " PREFIX_PASSWORD) or file:PATH (a docker config.json or a mounted .dockerconfigjson)"
    )


CredentialsSpec = Annotated[str, AfterValidator(_credentials_spec)]


_ENV_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
EnvName = Annotated[str, Field(pattern=f"^{_ENV_NAME}$")]
