"""Nothing to do, said as such: when not one app has a reference where the target reads (a new setup, an
image template or alias that does not match what the files say, files that name only other images), a
plan or deploy would print an empty table and succeed. This says which apps tagtrail knows, where it looked
and what a reference looks like, as an error."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

from tagtrail.adapters import apps as discovery
from tagtrail.errors import TagtrailError
from tagtrail.reconcile.outcome import Planned, Report
from tagtrail.reconcile.reconciler import Reconciler

Done = TypeVar("Done", list[Planned], Report)


async def placed(reconciler: Reconciler, work: Awaitable[Done]) -> Done:
    """What a plan or deploy came to; an error saying which apps and where tagtrail looked when it
    placed not one app."""
    done = await work
    if done.planned if isinstance(done, Report) else done:
        return done
    project = reconciler.project
    config = project.config
    names = sorted(app.name for app in discovery.discover(project.config_path.parent, config))
    if names:
        which = f"{', '.join(names)} {'has' if len(names) == 1 else 'have'} none"
    else:
        which = f"and no app is found under {config.apps.root}/ either"
    example = config.image_for(names[0] if names else "APP")
    raise TagtrailError(
        f"not one app has a reference in {project.target.where}: {which}. A reference names an app's"
        f" image as `image:` (or deploy.aliases) does, such as {example}:TAG; nothing to plan or deploy"
    )
