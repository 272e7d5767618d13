"""Walking a paginated tag list, every page checked, so that a list is whole or an error: never a part.

A registry that loops, repeats a page, changes the list mid-walk, sends a tag that is not a tag or points
its next link at another host ends the walk with a RegistryError (DESIGN invariant 4). The requests are the
client's; this module only decides what a page means and where the next one is.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

from tagtrail.adapters.registry.reference import ImageRef
from tagtrail.adapters.registry.transport import Endpoint, url_path
from tagtrail.domain.scheme import CheckedTags, first_invalid_tag
from tagtrail.errors import RegistryError

MAX_PAGES = 10_000


class TagWalk:
    """One walk over the pages of one repository's tag list: ask `next_url`, read the page, `take` it."""

    def __init__(self, ep: Endpoint, ref: ImageRef) -> None:
        self._ep = ep
        self._ref = ref
        self._url: str | None = f"{ep.base}/v2/{ref.repository}/tags/list?n={ep.settings.page_size}"
        self._tags: list[str] = []
        self._seen_tags: set[str] = set()
        self._seen_urls: set[str] = set()
        self._previous: list[str] | None = None

    @property
    def tags(self) -> CheckedTags:
        return CheckedTags(self._tags)  # every page was checked by first_invalid_tag

    def next_url(self) -> str | None:
        """The page to read next, None at the end; refuses a walk in a loop or without end."""
        url = self._url
        if url is None:
            return None
        if url in self._seen_urls:
            raise self._error(
                f"the tag list's next link leads back to a page already read ({url_path(url)}); refusing to walk in a loop"
            )
        if len(self._seen_urls) >= MAX_PAGES:
            raise self._error(f"the tag list goes on past {MAX_PAGES} pages")
        self._seen_urls.add(url)
        return url

    def take(self, response: httpx.Response, body: bytes) -> None:
        """Check one page (a 200 answer) and the walk's progress, and find the next page."""
        page = self._page(response, body)
        if self._previous is not None:  # from the second page on: the walk must make progress
            if page == self._previous and page:
                raise self._error("the registry sent the same page of tags twice")
            self._seen_tags = self._seen_tags or set(self._tags)
            repeated = self._seen_tags.intersection(page)
            if repeated:
                raise self._error(
                    f"the tag list changed while it was read ('{sorted(repeated)[0]}' came on two pages); try again"
                )
            self._seen_tags.update(page)
        self._url = self._next_page(response, page)
        self._tags.extend(page)
        self._previous = page

    def _page(self, response: httpx.Response, body: bytes) -> list[str]:
        kind = response.headers.get("Content-Type", "").split(";")[0].strip()
        if kind != "application/json":
            raise self._error(f"answered the tag list as '{kind or 'no content type'}', not JSON")
        try:
            data: Any = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise self._error("answered a tag list that is not valid JSON (truncated or malformed)") from None
        if not isinstance(data, dict) or not isinstance(data.get("tags", []), list | type(None)):
            raise self._error("answered a tag list without a 'tags' array")
        name = data.get("name")
        if isinstance(name, str) and name and name != self._ref.repository:
            raise self._error(f"answered the tag list of another repository ('{name}')")
        page = data.get("tags") or []
        bad = first_invalid_tag(page)
        if bad is not None:
            raise self._error(f"listed something that is not a tag: {str(bad)[:80]!r}")
        return list(page)

    def _next_page(self, response: httpx.Response, page: list[str]) -> str | None:
        link = response.links.get("next", {}).get("url")
        if not link:
            return None
        if not page:
            raise self._error("sent an empty page of tags with a link to another page")
        base = self._ep.base
        target = urljoin(f"{base}/", link)
        if urlsplit(target).netloc != urlsplit(base).netloc:
            raise self._error(f"the tag list's next link points at another host ({urlsplit(target).netloc})")
        last = parse_qs(urlsplit(target).query).get("last", [None])[0]
        if last is not None and last != page[-1]:
            raise self._error(
                f"the tag list changed shape while it was read (the next page starts after '{last}', but this page ended with '{page[-1]}'); try again"
            )
        return target

    def _error(self, message: str) -> RegistryError:
        return RegistryError(self._ep.host, self._ref.repository, message)
