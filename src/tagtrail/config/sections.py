"""Sections of `deploy:` that a target module declares itself, beside the built-in `git:` and `kubernetes:`:
a new target brings its own settings without a field added to the schema here. An unknown key under
`deploy:` is still an error; a registered one is validated with the model its target registered."""

from __future__ import annotations

from pydantic import BaseModel

TARGET_SECTIONS: dict[str, type[BaseModel]] = {}


def register_section(name: str, model: type[BaseModel]) -> None:
    """Accept `deploy.<name>:`, validated with `model` (call it before loading the config)."""
    TARGET_SECTIONS[name] = model
