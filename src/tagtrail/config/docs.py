"""The settings reference, made from the schema itself so that it cannot drift from the code."""

from __future__ import annotations

import json
import types
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from tagtrail.config.model import Config


@dataclass(frozen=True)
class Setting:
    """One key of tagtrail.yaml: its dotted path, type, default and one-line description."""

    key: str
    type: str
    default: str
    description: str


def json_schema() -> dict[str, Any]:
    """The JSON schema of tagtrail.yaml (draft 2020-12, as pydantic writes it)."""
    schema = Config.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def settings(model: type[BaseModel] = Config, prefix: str = "") -> list[Setting]:
    """Every setting, depth first, in declaration order."""
    rows: list[Setting] = []
    inherited = _inherited(model)
    for name, info in model.model_fields.items():
        if name in inherited:
            continue
        key = f"{prefix}{info.alias or name}"
        default = "required" if info.is_required() else _default(info.default, info.default_factory)
        rows.append(Setting(key, _type_name(info.annotation), default, info.description or ""))
        for nested in _models(info.annotation):
            child = f"{key}.<name>." if get_origin(info.annotation) is dict else f"{key}."
            rows.extend(settings(nested, child))
    if inherited:
        rows.append(Setting(f"{prefix}…", "", "deploy:'s", " ".join((model.__doc__ or "").split())))
    return rows


def _inherited(model: type[BaseModel]) -> set[str]:
    """The fields a model takes from a model it extends (an environment's, from deploy:), told in one row."""
    return {n for base in model.__bases__ if issubclass(base, BaseModel) for n in base.model_fields} - {
        n for n in model.model_fields if n in model.__annotations__
    }


def markdown_table() -> str:
    lines = ["| key | type | default | what it does |", "|---|---|---|---|"]
    lines += [f"| `{s.key}` | {s.type} | {s.default} | {s.description} |" for s in settings()]
    return "\n".join(lines) + "\n"


def _default(value: Any, factory: Any) -> str:
    if factory is not None:
        value = factory()
    if value is PydanticUndefined:
        return "required"
    if isinstance(value, BaseModel):
        return "see below"
    if isinstance(value, timedelta):
        return f"`{_duration(value)}`"
    if value is None or value in ({}, []):
        return "none"
    return f"`{json.dumps(value)}`"


def _duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models(arg)]


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(annotation) if a is not type(None))
    if origin is list:
        return f"list of {_type_name(get_args(annotation)[0])}"
    if origin is dict:
        return f"map of {_type_name(get_args(annotation)[1])}"
    if annotation is timedelta:
        return "duration"
    if origin is Literal:
        return " or ".join(str(a) for a in get_args(annotation))
    if get_args(annotation) and hasattr(annotation, "__metadata__"):
        return _type_name(get_args(annotation)[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "mapping"
    return getattr(annotation, "__name__", str(annotation))
