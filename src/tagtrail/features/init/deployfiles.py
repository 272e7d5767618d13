"""The deploy files of a repository as init finds them: every YAML file that names an image, what kind of
file it is (a Pulumi stack config, Kubernetes manifests, a kustomization, Helm values), which of the names
belong to the apps (found with the same `refs.find` deploys use) and which are third-party images.

An app's image can appear under another registry's name (a local registry the cluster pulls from); such a
name is proposed as an alias only when it cannot be someone else's image: it names at least two apps, or
its registry is a local one, or its path is the app image's own. Anything else is left for the reader.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from tagtrail.adapters.refs import Matcher, Reference, find
from tagtrail.adapters.registry import ImageRef
from tagtrail.config import CONFIG_NAME
from tagtrail.config.types import is_loopback_host
from tagtrail.errors import InvalidReference, RefsError
from tagtrail.features.init.reader import Reader

PULUMI, MANIFESTS, KUSTOMIZATION, HELM, OTHER = (
    "Pulumi stack config",
    "Kubernetes manifests",
    "kustomization",
    "Helm values",
    "other YAML",
)
KINDS = (PULUMI, MANIFESTS, KUSTOMIZATION, HELM, OTHER)
_IMAGE_KEYS = {"image", "newName", "repository"}
_LOCAL_SUFFIXES = (".lan", ".local", ".home", ".internal", ".localdomain", ".home.arpa")


@dataclass(frozen=True)
class Mention:
    """An image named in a file: where, and its repository as docker reads it (registry/path)."""

    path: str
    line: int
    name: str
    text: str
    key: str | None = None  # the key it is the value of


@dataclass
class YamlFile:
    path: str
    kind: str
    text: str
    mentions: list[Mention] = field(default_factory=list)


@dataclass(frozen=True)
class DeployFile:
    path: str
    kind: str
    refs: tuple[Reference, ...]
    third_party: tuple[Mention, ...]


def read_yaml_files(reader: Reader, files: list[str]) -> list[YamlFile]:
    """Every YAML file of the repository that parses, outside .github/ and tagtrail.yaml itself."""
    found = []
    for path in files:
        pure = PurePosixPath(path)
        if pure.suffix not in (".yaml", ".yml") or pure.parts[0] == ".github" or path == CONFIG_NAME:
            continue
        read = reader.nodes(path)
        if read is None:
            continue
        text, documents = read
        file = YamlFile(path, _kind(reader.root, pure, documents), text)
        for document in documents:
            _collect(document, file, None)
        found.append(file)
    return found


def _kind(root: Path, path: PurePosixPath, documents: list[Node]) -> str:
    if re.fullmatch(r"Pulumi\.[^/]+\.ya?ml", path.name):
        return PULUMI
    if path.name in ("kustomization.yaml", "kustomization.yml", "Kustomization"):
        return KUSTOMIZATION
    if path.name.startswith("values") or (root / path.parent / "Chart.yaml").is_file():
        return HELM
    if any(isinstance(d, MappingNode) and {"apiVersion", "kind"} <= set(_scalars(d)) for d in documents):
        return MANIFESTS
    return OTHER


def _scalars(node: MappingNode) -> dict[str, ScalarNode]:
    return {str(k.value): v for k, v in node.value if isinstance(k, ScalarNode) and isinstance(v, ScalarNode)}


def _collect(node: Node, file: YamlFile, key: str | None) -> None:
    if isinstance(node, MappingNode):
        scalars = _scalars(node)
        done = set()
        if "repository" in scalars and "tag" in scalars:  # Helm: [registry +] repository + tag
            registry = scalars.get("registry")
            name = (f"{registry.value}/" if registry is not None else "") + str(scalars["repository"].value)
            _mention(file, scalars["repository"], name, "image")
            done.add(id(scalars["repository"]))
        for k, v in node.value:
            if id(v) not in done:
                _collect(v, file, str(k.value) if isinstance(k, ScalarNode) else None)
    elif isinstance(node, SequenceNode):
        for item in node.value:
            _collect(item, file, None)
    elif isinstance(node, ScalarNode) and node.style not in ("|", ">"):
        _mention(file, node, str(node.value), key)


def _mention(file: YamlFile, node: ScalarNode, text: str, key: str | None) -> None:
    ref = image_of(text, key)
    if ref is not None:
        file.mentions.append(Mention(file.path, node.start_mark.line + 1, ref.name, text, key))


def image_of(text: str, key: str | None) -> ImageRef | None:
    """The image a scalar names, if it reads as one: under an image-ish key, any reference; elsewhere only
    one with a digest, a path, or a tag that reads like a version (`nginx:1.25`, never `redis:6379`)."""
    if not text or len(text) > 255 or any(c.isspace() for c in text) or text[0] in "{$-.":
        return None
    try:
        ref = ImageRef.parse(text)
    except InvalidReference:
        return None
    if key in _IMAGE_KEYS or ref.digest:
        return ref
    if ref.tag is None:
        return None
    named = re.search(r"[a-z]", ref.repository.rsplit("/", 1)[-1]) is not None
    return ref if "/" in text or (named and re.search(r"[a-z.]", ref.tag)) else None


def app_templates(name: str, apps: Collection[str]) -> list[tuple[str, str]]:
    """Each way a repository name reads as an app's image, as (template, app): the app's name as a path
    component or a part of one between `-`, `_` and `.` (`shop/api`, `shop-api`, `api-service`); never in the
    registry's host, never Docker Hub's library/."""
    if name.startswith("docker.io/library/"):
        return []
    registry, _, path = name.partition("/")
    parts = path.split("/")
    found = []
    for index, part in enumerate(parts):
        # every run of whole words of the part (a few), looked up: not every app searched in every name
        cuts = [m.start() for m in re.finditer(r"[-_.]", part)]
        starts, ends = [0, *(c + 1 for c in cuts)], [*cuts, len(part)]
        for start in starts:
            for end in (e for e in ends if e > start):
                if part[start:end] in apps:
                    templated = part[:start] + "{app}" + part[end:]
                    found.append(
                        (
                            "/".join([registry, *parts[:index], templated, *parts[index + 1 :]]),
                            part[start:end],
                        )
                    )
    return found


def by_template(files: list[YamlFile], apps: list[str]) -> dict[str, tuple[set[str], list[Mention]]]:
    """Every template some names of the deploy files follow: the apps it names there, and where."""
    found: dict[str, tuple[set[str], list[Mention]]] = {}
    known = frozenset(apps)
    for file in files:
        for mention in file.mentions:
            for template, app in app_templates(mention.name, known):
                named, where = found.setdefault(template, (set(), []))
                named.add(app)
                where.append(mention)
    return found


def infer_image(files: list[YamlFile], apps: list[str]) -> tuple[str, set[str], list[Mention]] | None:
    """The image template that explains the most of the apps' names in the deploy files (then the most
    references), the apps it names and where."""
    candidates = by_template(files, apps)
    if not candidates:
        return None
    best = max(candidates, key=lambda t: (len(candidates[t][0]), len(candidates[t][1]), t))
    return best, *candidates[best]


def infer_aliases(
    files: list[YamlFile], apps: list[str], image: str
) -> tuple[dict[str, Mention], dict[str, str]]:
    """Other names of the apps' images in the deploy files: those taken as aliases (with a place each uses
    it), and those left out because they may be someone else's images (with a sentence each)."""
    canonical = Matcher(image)
    own_path = ImageRef.parse(image.replace("{app}", "app")).repository.rsplit("/", 1)[0]
    aliases: dict[str, Mention] = {}
    doubtful: dict[str, str] = {}
    for template, (named, where) in sorted(by_template(files, apps).items()):
        if all(canonical.app_of(m.name) is not None for m in where):
            continue
        ref = ImageRef.parse(template.replace("{app}", "app"))
        if len(named) >= 2 or is_local(ref.registry) or ref.repository.rsplit("/", 1)[0] == own_path:
            aliases[template] = where[0]
        else:
            app = sorted(named)[0]
            doubtful[template] = (
                f"{where[0].path}:{where[0].line} names {where[0].text}, which ends in the app name {app};"
                f" if it is {app}'s image under another name, add '{template}' to deploy.aliases"
            )
    return aliases, doubtful


def is_local(registry: str) -> bool:
    """Whether a registry host is on this machine or a home network (a port, a .lan name, a private IP)."""
    host, _, port = registry.rpartition(":") if registry.count(":") == 1 else (registry, "", "")
    if host == "localhost" or port or host.endswith(_LOCAL_SUFFIXES):
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return address.is_private or address.is_loopback


def is_loopback(registry: str) -> bool:
    return is_loopback_host(registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry)


def deploy_files(
    files: list[YamlFile], matcher: Matcher, apps: list[str]
) -> tuple[list[DeployFile], list[str]]:
    """The files with references to the apps' images, each with its third-party images, kinds in order; and
    a sentence for each app's image named where tagtrail cannot write it back. A file holding one is not
    proposed: a deploy would skip that image, or write a tag into a key the chart reads as a repository."""
    found = []
    unwritable = []
    for file in files:
        named = [m for m in file.mentions if matcher.app_of(m.name) in apps]
        try:
            refs = find(file.path, file.text, matcher)
        except RefsError as exc:
            if named:
                unwritable.append(
                    f"{str(exc).removesuffix('; nothing was written')}; {file.path} is not proposed"
                )
            continue
        written = _lines_of(file.text, [s.start for ref in refs for s in ref.spans.values()])
        untagged = {r.line for r in refs if r.kind == "image" and r.tag is None and r.digest is None}
        wrong = [m for m in named if m.line not in written or (m.key == "repository" and m.line in untagged)]
        unwritable += [
            f"{m.path}:{m.line} names {m.text} ({matcher.app_of(m.name)}'s image) under {m.key}: with no tag"
            f" beside it, a shape tagtrail cannot write back; {m.path} is not proposed: put its tag beside it"
            f" (tag:), or declare the keys as deploy.apps.{matcher.app_of(m.name)}.helm and list the file in"
            " deploy.git.files"
            for m in wrong
        ]
        if not refs or wrong:
            continue
        others = tuple(m for m in file.mentions if matcher.app_of(m.name) is None)
        found.append(DeployFile(file.path, file.kind, tuple(refs), others))
    return sorted(found, key=lambda f: (KINDS.index(f.kind), f.path)), unwritable


def _lines_of(text: str, offsets: list[int]) -> set[int]:
    """The 1-based lines of character offsets in `text`, counted in one pass over it (not once per offset:
    a manifest of thousands of references)."""
    lines, line, at = set(), 1, 0
    for offset in sorted(offsets):
        line += text.count("\n", at, offset)
        at = offset
        lines.add(line)
    return lines
