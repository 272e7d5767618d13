"""Fuzz: the webhook payload parsers take any bytes and either return pushes or raise HookError (a 400).

Anything else (a TypeError from an unhashable media type, an AttributeError from an `owner` that is a
string, a RecursionError from deep nesting) would be a 500 from a public endpoint, so it is a bug."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from bench.fuzzing import as_bytes, body_bytes, json_values, nested, outcome
from tagtrail.serve.web.hooks import (
    PUSHED_TYPES,
    HookError,
    Push,
    distribution_pushes,
    generic_push,
    github_pushes,
)

anything = json_values


def maybe(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The right value most of the time, any JSON value (of the wrong type, say) otherwise."""
    return st.one_of(value, value, value, anything)


events = st.fixed_dictionaries(
    {},
    optional={
        "action": maybe(st.sampled_from(["push", "pull", "delete"])),
        "target": maybe(
            st.fixed_dictionaries(
                {},
                optional={
                    "repository": maybe(st.sampled_from(["acme/web", "", "a/b/c"])),
                    "tag": maybe(st.sampled_from(["v1", "", "main.20251014-051038.185c95c"])),
                    "mediaType": maybe(st.sampled_from([*sorted(PUSHED_TYPES), "application/octet-stream"])),
                    "digest": anything,
                },
            )
        ),
        "request": maybe(st.fixed_dictionaries({}, optional={"host": maybe(st.just("127.0.0.1:5000"))})),
    },
)
envelopes = st.one_of(
    st.fixed_dictionaries({"events": maybe(st.lists(maybe(events), max_size=8))}),
    anything,
)

versions = st.fixed_dictionaries(
    {},
    optional={
        "package_url": maybe(
            st.sampled_from(["ghcr.io/o/web:v1", "ghcr.io/o/web:", "ghcr.io/o/web@sha256:" + "a" * 64, "x"])
        ),
        "container_metadata": maybe(
            st.fixed_dictionaries(
                {}, optional={"tag": maybe(st.fixed_dictionaries({}, optional={"name": anything}))}
            )
        ),
    },
)
packages = st.fixed_dictionaries(
    {},
    optional={
        "package_type": maybe(st.sampled_from(["container", "CONTAINER", "npm"])),
        "namespace": maybe(st.just("acme")),
        "owner": maybe(st.fixed_dictionaries({}, optional={"login": maybe(st.just("acme"))})),
        "name": maybe(st.just("web")),
        "package_version": maybe(versions),
    },
)
github_events = st.sampled_from(["package", "registry_package", "ping", "push", ""])


def github_payloads(event: str) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.fixed_dictionaries(
            {"action": maybe(st.sampled_from(["published", "updated", "deleted"]))},
            optional={event or "package": maybe(packages)},
        ),
        anything,
    )


generic = st.one_of(
    st.fixed_dictionaries(
        {"image": maybe(st.sampled_from(["ghcr.io/o/web", "ghcr.io/o/web:v1", "", "web:"]))},
        optional={"tag": maybe(st.sampled_from(["v1", ""]))},
    ),
    anything,
)


# What the fuzzer found once, kept so every run (not only a lucky one) checks it.
FOUND_DEEP = nested(5000, {}).encode()  # RecursionError from json.loads
FOUND_LIST_MEDIA_TYPE = as_bytes(  # TypeError: a list is not hashable, `in frozenset` fails
    {"events": [{"action": "push", "target": {"repository": "a/b", "tag": "v1", "mediaType": []}}]}
)
FOUND_OWNER_STRING = as_bytes(  # AttributeError: 'str' object has no attribute 'get'
    {"action": "published", "package": {"package_type": "container", "owner": "acme", "name": "web"}}
)


@given(body_bytes(envelopes))
@example(FOUND_DEEP)
@example(FOUND_LIST_MEDIA_TYPE)
def test_distribution_pushes_accepts_or_refuses_any_body(body: bytes) -> None:
    pushes = outcome(lambda: distribution_pushes(body), HookError)
    if isinstance(pushes, HookError):
        assert pushes.status == 400
    else:
        assert all(isinstance(p, Push) and isinstance(p.image, str) for p in pushes)


@given(github_events, st.data())
@example("package", FOUND_OWNER_STRING)
@example("registry_package", FOUND_DEEP)
def test_github_pushes_accepts_or_refuses_any_body(event: str, data: st.DataObject | bytes) -> None:
    body = data if isinstance(data, bytes) else data.draw(body_bytes(github_payloads(event)))
    pushes = outcome(lambda: github_pushes(event, body), HookError)
    if isinstance(pushes, HookError):
        assert pushes.status == 400
    else:
        assert all(isinstance(p, Push) and isinstance(p.image, str) for p in pushes)


@given(body_bytes(generic))
@example(FOUND_DEEP)
def test_generic_push_accepts_or_refuses_any_body(body: bytes) -> None:
    push = outcome(lambda: generic_push(body), HookError)
    if isinstance(push, HookError):
        assert push.status == 400
    else:
        assert isinstance(push.image, str)
        assert push.tag is None or isinstance(push.tag, str)
