"""Edit `deploy.pins` (or an environment's `pins`) in tagtrail.yaml as a person would: one line added, changed or removed, every other
byte (comments, order, quoting) as it was. The result is validated before it is returned."""

from __future__ import annotations

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from tagtrail.config.loader import parse_config
from tagtrail.errors import ConfigError, PinEditError


def _root(text: str, path: str) -> MappingNode | None:
    try:
        node = YAML(typ="rt").compose(text)
    except YAMLError as exc:
        raise PinEditError(f"{path}: not valid YAML ({exc}); fix it first") from None
    if node is not None and not isinstance(node, MappingNode):
        raise PinEditError(f"{path}: the top level must be a mapping")
    return node


def _entry(mapping: MappingNode, key: str) -> tuple[ScalarNode, Node] | None:
    for k, v in mapping.value:
        if isinstance(k, ScalarNode) and k.value == key:
            return k, v
    return None


def _leaf_end(node: Node) -> int:
    """Where a block mapping's last value ends: the end of its last leaf, since a block node's own end is
    where the next key starts (on the next line, after its indentation)."""
    while isinstance(node, MappingNode | SequenceNode) and not node.flow_style and node.value:
        last = node.value[-1]
        node = last[1] if isinstance(last, tuple) else last
    return int(node.end_mark.index)


def _line_end(text: str, index: int) -> int:
    end = text.find("\n", index)
    return len(text) if end < 0 else end + 1


def _newline(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def _section(root: MappingNode | None, environment: str | None) -> tuple[ScalarNode, Node] | None:
    """The mapping that holds the pins: deploy:, or environments.<environment>:."""
    if root is None:
        return None
    if environment is None:
        return _entry(root, "deploy")
    lanes = _entry(root, "environments")
    return _entry(lanes[1], environment) if lanes and isinstance(lanes[1], MappingNode) else None


def _check(text: str, path: str, app: str, tag: str | None, environment: str | None = None) -> str:
    try:
        config = parse_config(text, path)
    except ConfigError as exc:
        raise PinEditError(
            f"{path}: the edited file would not be valid ({exc}); nothing was written"
        ) from None
    held = config.environments[environment] if environment else config.deploy
    if held.pins.get(app) != tag:
        raise PinEditError(f"{path}: the edit did not read back as intended; edit deploy.pins by hand")
    return text


def set_pin(
    text: str, app: str, tag: str, path: str = "tagtrail.yaml", environment: str | None = None
) -> str:
    """tagtrail.yaml with `deploy.pins.<app>: <tag>` (`environments.<environment>.pins.<app>`)."""
    nl = _newline(text)
    root = _root(text, path)
    deploy = _section(root, environment)
    if deploy is None and environment is not None:
        raise PinEditError(f"{path}: no environments.{environment} to pin {app} in; add the pin by hand")
    if deploy is None:
        prefix = "" if not text or text.endswith("\n") else nl
        return _check(f"{text}{prefix}deploy:{nl}  pins:{nl}    {app}: {tag}{nl}", path, app, tag)
    deploy_key, deploy_value = deploy
    if not isinstance(deploy_value, MappingNode) or deploy_value.flow_style:
        raise PinEditError(
            f"{path}:{deploy_key.start_mark.line + 1}: deploy is not a block mapping; add pins by hand"
        )
    indent = " " * deploy_value.value[0][0].start_mark.column if deploy_value.value else "  "
    pins = _entry(deploy_value, "pins")
    if pins is None:
        at = (
            _line_end(text, _leaf_end(deploy_value) - 1)
            if deploy_value.value
            else _line_end(text, deploy_key.end_mark.index)
        )
        return _check(
            text[:at] + f"{indent}pins:{nl}{indent}  {app}: {tag}{nl}" + text[at:],
            path,
            app,
            tag,
            environment,
        )
    pins_key, pins_value = pins
    if isinstance(pins_value, MappingNode) and not pins_value.flow_style and pins_value.value:
        existing = _entry(pins_value, app)
        if existing is not None:
            old = existing[1]
            return _check(
                text[: old.start_mark.index] + tag + text[old.end_mark.index :], path, app, tag, environment
            )
        inner = " " * pins_value.value[0][0].start_mark.column
        at = _line_end(text, pins_value.end_mark.index - 1)
        return _check(text[:at] + f"{inner}{app}: {tag}{nl}" + text[at:], path, app, tag, environment)
    if isinstance(pins_value, MappingNode):  # a flow mapping: {} or {a: b}
        items = [f"{k.value}: {v.value}" for k, v in pins_value.value if k.value != app] + [f"{app}: {tag}"]
        new = "{" + ", ".join(items) + "}"
        return _check(
            text[: pins_value.start_mark.index] + new + text[pins_value.end_mark.index :],
            path,
            app,
            tag,
            environment,
        )
    # `pins:` with nothing after it (null)
    at = pins_key.end_mark.index + 1  # after the colon
    return _check(text[:at] + f" {{{app}: {tag}}}" + text[at:], path, app, tag, environment)


def remove_pin(text: str, app: str, path: str = "tagtrail.yaml", environment: str | None = None) -> str:
    """tagtrail.yaml without `deploy.pins.<app>` (`environments.<environment>.pins.<app>`; unchanged when
    the app is not pinned there)."""
    root = _root(text, path)
    deploy = _section(root, environment)
    pins = _entry(deploy[1], "pins") if deploy is not None and isinstance(deploy[1], MappingNode) else None
    if pins is None:
        return text
    pins_key, pins_value = pins
    if not isinstance(pins_value, MappingNode):
        return text
    existing = _entry(pins_value, app)
    if existing is None:
        return text
    if pins_value.flow_style:
        items = [f"{k.value}: {v.value}" for k, v in pins_value.value if k.value != app]
        new = "{" + ", ".join(items) + "}"
        return _check(
            text[: pins_value.start_mark.index] + new + text[pins_value.end_mark.index :],
            path,
            app,
            None,
            environment,
        )
    key, value = existing
    start = text.rfind("\n", 0, key.start_mark.index) + 1
    end = _line_end(
        text,
        value.end_mark.index - 1 if value.end_mark.index > value.start_mark.index else value.end_mark.index,
    )
    if len(pins_value.value) == 1:  # the last pin: leave `pins: {}` so the key keeps its meaning
        colon = pins_key.end_mark.index + 1
        return _check(text[:colon] + " {}" + _newline(text) + text[end:], path, app, None, environment)
    return _check(text[:start] + text[end:], path, app, None, environment)
