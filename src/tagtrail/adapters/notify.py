"""Notifications through apprise URLs (ntfy, Slack, Discord, email, …): deploys, rollbacks, pins, failures.

URLs come from `notify.urls` and from the environment variable `notify.urls_env` (for URLs that hold a
token). A message never carries a secret: it names apps, tags, commits and reasons; registry and git errors
are already stripped of credentials where they are made. A notification that cannot be sent is logged; it
never fails a deploy.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from typing import Literal

import apprise

from tagtrail.config import Config

log = logging.getLogger("tagtrail.notify")
# apprise's own log lines can quote a URL, token included: tagtrail says what went wrong instead.
logging.getLogger("apprise").setLevel(logging.CRITICAL)
Kind = Literal["info", "success", "warning", "failure"]


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    kind: Kind = "info"


class Notifier:
    """Sends to every configured URL; a no-op when there is none."""

    def __init__(self, urls: list[str]) -> None:
        self._apprise = apprise.Apprise()
        self.count = 0
        for url in urls:
            if not self._apprise.add(url):
                # apprise cannot read it: say which one without showing it (it may hold a token)
                scheme = url.split("://", 1)[0] if "://" in url else "?"
                log.warning(
                    "a notification URL (%s://…) is not one apprise understands; it is skipped", scheme
                )
            else:
                self.count += 1

    @classmethod
    def from_config(cls, config: Config, env: dict[str, str] | None = None) -> Notifier:
        environment = os.environ if env is None else env
        extra = environment.get(config.notify.urls_env, "").split()
        return cls([*config.notify.urls, *extra])

    def send(self, message: Message) -> bool:
        if not self.count:
            return False
        kinds = {
            "info": apprise.NotifyType.INFO,
            "success": apprise.NotifyType.SUCCESS,
            "warning": apprise.NotifyType.WARNING,
            "failure": apprise.NotifyType.FAILURE,
        }
        try:
            sent = bool(
                self._apprise.notify(title=message.title, body=message.body, notify_type=kinds[message.kind])
            )
        except (
            Exception
        ) as exc:  # apprise plugins raise what they like; a notification must not stop tagtrail
            log.warning("a notification could not be sent (%s)", type(exc).__name__)
            return False
        if not sent:
            log.warning("a notification could not be sent to every URL")
        return sent

    async def send_async(self, message: Message) -> bool:
        return await asyncio.to_thread(self.send, message)
