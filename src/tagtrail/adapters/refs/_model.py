"""The nouns of write-back: what a reference says now, what it should say, and which app an image is."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from tagtrail.adapters.registry.reference import ImageRef
from tagtrail.errors import InvalidReference

if TYPE_CHECKING:
    from tagtrail.config.model import Config

_APP = r"(?P<app>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)"
_PLACEHOLDER = "appplaceholder0"
FLUX_NAMESPACE = "flux-system"

# image: one scalar holds the whole reference; tag/name/digest: a Flux marker's part of one;
# helm and kustomize: a mapping that splits the reference across keys.
Kind = Literal["image", "tag", "name", "digest", "helm", "kustomize"]


@dataclass(frozen=True)
class Image:
    """What an app's references should say: its canonical repository, tag and digest."""

    repository: str
    tag: str
    digest: str

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.tag}@{self.digest}"


@dataclass(frozen=True)
class Span:
    """A scalar's value token: [start, end) in the file's characters (after any `&anchor` or `!tag`, which
    belong to the node and stay), its quoting style and its value."""

    start: int
    end: int
    style: str | None
    value: str
    lead: str = ""  # written before a new value where the file has none (`tag:` → `tag: v1`)


@dataclass(frozen=True)
class Reference:
    """One place in one file that says which image of an app runs."""

    path: str
    app: str
    kind: Kind
    line: int  # 1-based
    name: str | None  # the repository as written (normalised), when the place names one
    tag: str | None
    digest: str | None
    spans: Mapping[str, Span] = field(default_factory=dict)  # role → scalar: image, tag, digest, repository…
    insert_at: int | None = None  # kustomize: where missing `newTag:`/`digest:` lines go
    indent: str = ""

    @property
    def current(self) -> str | None:
        """The reference as it reads now (name:tag@digest), for history and status."""
        if self.name is None:
            return None
        text = self.name + (f":{self.tag}" if self.tag else "")
        return text + (f"@{self.digest}" if self.digest else "")


@dataclass(frozen=True)
class HelmKeys:
    """Where a values file keeps an app's image when the keys cannot be recognised: dotted key paths from
    the document's root (`image.name`; a key that itself holds dots, `image.tag:` at the root, also works)."""

    repository: str
    tag: str
    digest: str | None = None


class Matcher:
    """Which app, if any, an image repository belongs to: by the `image` template or an alias. It also
    carries what else decides what a reference is: per-app Helm key paths, and the namespaces whose Flux
    `$imagepolicy` markers are tagtrail's."""

    def __init__(
        self,
        image: str,
        aliases: Sequence[str] = (),
        *,
        helm: Mapping[str, Sequence[HelmKeys]] | None = None,
        namespaces: Collection[str] = (FLUX_NAMESPACE,),
    ) -> None:
        templates = (image, *aliases)
        self._patterns = [_template_regex(t) for t in templates]
        self._paths = [_path_regex(t) for t in templates]
        self._canonical = image
        self.helm: Mapping[str, tuple[HelmKeys, ...]] = {app: tuple(k) for app, k in (helm or {}).items()}
        self.namespaces = frozenset(namespaces)

    @classmethod
    def from_config(cls, config: Config) -> Matcher:
        """The matcher tagtrail.yaml describes: image, aliases, per-app Helm keys, marker namespaces."""
        deploy = config.deploy
        helm = {
            app: [HelmKeys(k.repository, k.tag, k.digest) for k in settings.helm]
            for app, settings in deploy.apps.items()
            if settings.helm
        }
        return cls(config.image, deploy.aliases, helm=helm, namespaces=deploy.marker_namespaces)

    def app_of(self, name: str) -> str | None:
        """The app of a normalised repository name (`registry/path`), if it is managed."""
        for pattern in self._patterns:
            match = pattern.fullmatch(name)
            if match:
                return match["app"]
        return None

    def app_of_pushed(self, image: str) -> str | None:
        """The app of an image a webhook says was pushed. A registry may know itself by another name than
        the config (127.0.0.1:5000 for registry.lan), so the repository path alone also matches: a hint only
        schedules a read of the configured registry, it never names what is deployed."""
        try:
            ref = ImageRef.parse(image)
        except InvalidReference:
            return None
        app = self.app_of(ref.name)
        if app is not None:
            return app
        for pattern in self._paths:
            match = pattern.fullmatch(ref.repository)
            if match:
                return match["app"]
        return None

    def canonical(self, app: str) -> str:
        return normalise(self._canonical.replace("{app}", app))

    def names(self, written: str, app: str, target: Image) -> bool:
        """Whether a repository as written is the app's image (by template, alias, or the target's name)."""
        try:
            name = normalise(written)
        except InvalidReference:
            return False
        return self.app_of(name) == app or name == normalise(target.repository)


def normalise(name: str) -> str:
    """registry/repository as docker reads it (`nginx` is docker.io/library/nginx)."""
    return ImageRef.parse(name).name


def split_written(text: str) -> tuple[str, str | None, str | None]:
    """A reference's text as repository, tag and digest, the repository exactly as written."""
    name, at, digest = text.partition("@")
    colon = name.rfind(":")
    if colon > name.rfind("/"):
        return name[:colon], name[colon + 1 :], digest if at else None
    return name, None, digest if at else None


def _template_regex(template: str) -> re.Pattern[str]:
    normalised = normalise(template.replace("{app}", _PLACEHOLDER))
    return re.compile(re.escape(normalised).replace(_PLACEHOLDER, _APP))


def _path_regex(template: str) -> re.Pattern[str]:
    path = ImageRef.parse(template.replace("{app}", _PLACEHOLDER)).repository
    return re.compile(re.escape(path).replace(_PLACEHOLDER, _APP))
