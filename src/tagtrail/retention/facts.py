"""What retention must never delete, gathered from the target: what runs, every pin, the rollback targets.

What runs is what the target declares (the deploy files in git), every reference of each app, by tag and
by digest. The rollback targets are the builds of each app's last `rollback` deploys in its history. Pins
come from tagtrail.yaml. A target that cannot be read stops the plan: nothing is deleted blind.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import TypeVar

from tagtrail.config import Config
from tagtrail.config.retention import AppRetentionConfig, RetentionConfig
from tagtrail.retention.rules import Rules
from tagtrail.targets.base import Target

T = TypeVar("T")


@dataclass
class Protected:
    """Per app: the tags and digests always kept, by why."""

    running: set[str] = field(default_factory=set)
    pins: set[str] = field(default_factory=set)
    rollback: set[str] = field(default_factory=set)
    digests: set[str] = field(default_factory=set)  # running and rollback builds, by digest


async def protected(config: Config, target: Target, apps: list[str]) -> dict[str, Protected]:
    """What each app keeps whatever the rules say."""
    declared = await target.declared()
    found: dict[str, Protected] = defaultdict(Protected)
    for app in apps:
        state = declared.states.get(app)
        keep = found[app]
        if state is not None:
            for ref in state.refs:
                if ref.tag:
                    keep.running.add(ref.tag)
                if ref.digest:
                    keep.digests.add(ref.digest)
            if state.running.tag:
                keep.running.add(state.running.tag)
            if state.running.digest:
                keep.digests.add(state.running.digest)
        pin = config.deploy.pins.get(app)
        if pin:
            keep.pins.add(pin)
    history = await target.history()
    counts: dict[str, int] = defaultdict(int)
    for entry in history:  # newest first
        if entry.app not in apps or counts[entry.app] >= rules_for(config.retention, entry.app).rollback:
            continue
        counts[entry.app] += 1
        keep = found[entry.app]
        if entry.tag:
            keep.rollback.add(entry.tag)
        if entry.digest:
            keep.digests.add(entry.digest)
    return {app: found[app] for app in apps}


@dataclass(frozen=True)
class AppRules:
    rules: Rules
    rollback: int


def rules_for(settings: RetentionConfig, app: str) -> AppRules:
    """One app's rules: its own settings where it has them, else retention's."""
    own = settings.apps.get(app) or AppRetentionConfig()
    rules = Rules(
        _or(own.keep_deploy, settings.keep_deploy),
        _or(own.keep_other, settings.keep_other),
        _or(own.max_age_other, settings.max_age_other),
        _or(own.max_age_dirty, settings.max_age_dirty),
        settings.min_age,
        tuple(settings.delete_unscheme),
    )
    return AppRules(rules, _or(own.rollback, settings.rollback))


def _or(value: T | None, default: T) -> T:
    return default if value is None else value
