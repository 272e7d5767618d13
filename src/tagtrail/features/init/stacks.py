"""The Pulumi Kubernetes Operator's Stack manifests of a repository (`kind: Stack`, `apiVersion:
pulumi.com/…`): one that applies this repository's deploy branch is what `deploy.git.applied_by` follows.
Pure over the node trees the reader composed; a Stack of another repository or branch is said, not taken."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ruamel.yaml.nodes import MappingNode, Node, ScalarNode

from tagtrail.features.init.deployfiles import MANIFESTS, YamlFile
from tagtrail.features.init.reader import Reader

_DNS_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")


@dataclass(frozen=True)
class FoundStack:
    """A Stack manifest: where it is and what it names."""

    path: str
    line: int
    namespace: str | None
    name: str
    repository: str
    branch: str | None

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


def find_stacks(
    reader: Reader, files: list[YamlFile], remote: str | None, branch: str
) -> tuple[list[FoundStack], list[str]]:
    """The Stacks that apply `branch` of the repository at `remote`, and a sentence for each other one."""
    found, said = [], []
    for file in files:
        if file.kind != MANIFESTS or (read := reader.nodes(file.path)) is None:
            continue
        for document in read[1]:
            stack = _stack(file.path, document)
            if stack is None:
                continue
            if remote is None or _repository(stack.repository) != _repository(remote):
                said.append(
                    f"{stack.where}: a Pulumi Stack of {stack.repository}, not this repository: not followed"
                )
            elif stack.branch != branch:
                said.append(
                    f"{stack.where}: a Pulumi Stack of this repository's {stack.branch or 'pinned commit'},"
                    f" not {branch}: not followed"
                )
            elif stack.namespace is None:
                said.append(
                    f"{stack.where}: the Pulumi Stack {stack.name} names no namespace: set"
                    " deploy.git.applied_by.pulumi_stack to where it runs"
                )
            else:
                found.append(stack)
    return found, said


def _stack(path: str, document: Node) -> FoundStack | None:
    top = _mapping(document)
    if not str(top.get("apiVersion", "")).startswith("pulumi.com/") or top.get("kind") != "Stack":
        return None
    metadata, spec = _mapping(_child(document, "metadata")), _mapping(_child(document, "spec"))
    name, repository = metadata.get("name"), spec.get("projectRepo")
    if not name or not _DNS_NAME.fullmatch(name) or not repository:
        return None
    namespace = metadata.get("namespace")
    branch = spec.get("branch")
    line = document.start_mark.line + 1
    return FoundStack(path, line, namespace or None, name, repository, _branch(branch) if branch else None)


def _child(node: Node, key: str) -> Node | None:
    if isinstance(node, MappingNode):
        for k, v in node.value:
            if isinstance(k, ScalarNode) and k.value == key:
                return v  # type: ignore[no-any-return]
    return None


def _mapping(node: Node | None) -> dict[str, str]:
    """A mapping's scalar values by key (nested values left out)."""
    if not isinstance(node, MappingNode):
        return {}
    return {
        str(k.value): str(v.value)
        for k, v in node.value
        if isinstance(k, ScalarNode) and isinstance(v, ScalarNode)
    }


def _branch(ref: str) -> str:
    return ref.removeprefix("refs/heads/")


def _repository(url: str) -> str:
    """A git URL as host/owner/name, so https, ssh and scp-like forms of one repository compare equal."""
    text = url.strip().lower()
    text = re.sub(r"^[a-z+]+://", "", text)
    text = re.sub(r"^[^@/]+@", "", text)
    text = text.replace(":", "/", 1) if re.match(r"^[^/]+:(?!\d)", text) else text
    return text.removesuffix("/").removesuffix(".git")
