"""GitHub's own descriptions of its API, held against every exchange of the pull-request stand-in.

REST: the OpenAPI 3.0 description of api.github.com from the npm package @octokit/openapi, trimmed to the
paths the stand-in serves and validated with openapi-core. GraphQL: GitHub's schema from
@octokit/graphql-schema (its introspection JSON: the SDL file defines some fields twice, which graphql-core
rightly refuses), with documents and variables validated by graphql-core. scripts/setup installs both
packages, at pinned versions, under $TAGTRAIL_CI_CACHE/npm.

A check returns violations as one line each (`POST /repos/{owner}/{repo}/pulls request: 'head' is a
required property`), never raises: the stand-in records them and the fixture's teardown fails the test.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    build_client_schema,
    parse,
    validate,
)
from graphql.execution.values import get_variable_values
from openapi_core import Config, OpenAPI
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.testing import MockRequest, MockResponse

NPM = Path(os.environ.get("TAGTRAIL_CI_CACHE", "/var/cache/tagtrail-ci")) / "npm" / "node_modules"
OPENAPI = NPM / "@octokit/openapi/generated/api.github.com.json"
GRAPHQL = NPM / "@octokit/graphql-schema/schema.json"
HOST = "https://api.github.com"

SERVED = (
    "/repos/{owner}/{repo}",
    "/repos/{owner}/{repo}/pulls",
    "/repos/{owner}/{repo}/pulls/{pull_number}",
    "/repos/{owner}/{repo}/pulls/{pull_number}/merge",
    "/repos/{owner}/{repo}/issues/{issue_number}/comments",
    "/repos/{owner}/{repo}/issues/{issue_number}/labels",
    "/repos/{owner}/{repo}/branches/{branch}/protection",
)
# GitHub answers these on every endpoint (unparsable JSON, bad credentials, rate limits) without the
# description listing them per operation; their body is GitHub's basic error.
EVERYWHERE = (400, 401, 403, 404, 429)
_LINE = 240


class Description:
    """The REST description and the GraphQL schema, parsed once (a session fixture holds one)."""

    def __init__(self, openapi: Path = OPENAPI, graphql: Path = GRAPHQL) -> None:
        missing = [str(p) for p in (openapi, graphql) if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"{', '.join(missing)} missing: run ./scripts/setup (it installs them)")
        whole = json.loads(openapi.read_bytes())
        self.version = whole["info"]["version"]
        trimmed = {**whole, "paths": {p: whole["paths"][p] for p in SERVED}}
        self.rest = OpenAPI.from_dict(trimmed, config=Config(spec_validator_cls=None))
        self.schema: GraphQLSchema = build_client_schema(json.loads(graphql.read_bytes()))

    def request(self, method: str, path: str, query: dict[str, str], body: bytes) -> list[str]:
        """What breaks the description in a request (path without any /api/v3 prefix)."""
        try:
            self.rest.validate_request(_request(method, path, query, body))
        except Exception as error:  # openapi-core's errors are the verdict here, whatever their class
            return [f"{method} {path} request: {_reason(error)}"]
        return []

    def response(
        self, method: str, path: str, query: dict[str, str], body: bytes, status: int, headers: dict[str, str]
    ) -> list[str]:
        """What breaks the description in a response to a request that kept to it."""
        request = _request(method, path, query, b"")
        answer = MockResponse(body, status_code=status, headers=headers, content_type="application/json")
        try:
            self.rest.validate_response(request, answer)
        except ResponseNotFound:
            if status in EVERYWHERE and _basic_error(body):
                return []
            return [f"{method} {path} response: status {status} is not described for this operation"]
        except Exception as error:
            return [f"{method} {path} response {status}: {_reason(error)}"]
        return []

    def graphql(self, source: str, variables: dict[str, Any] | None) -> tuple[DocumentNode | None, list[str]]:
        """The parsed document and what breaks GitHub's schema in it or in its variables."""
        try:
            document = parse(source)
        except GraphQLError as error:
            return None, [f"graphql: {error.message}"]
        errors = list(validate(self.schema, document))
        for node in document.definitions:
            if isinstance(node, OperationDefinitionNode) and not errors:
                coerced = get_variable_values(self.schema, node.variable_definitions or (), variables or {})
                if isinstance(coerced, list):
                    errors.extend(coerced)
        return document, [f"graphql: {_clip(error.message)}" for error in errors]


def _request(method: str, path: str, query: dict[str, str], body: bytes) -> MockRequest:
    return MockRequest(
        HOST, method.lower(), path, args=query, data=body or None, content_type="application/json"
    )


def _basic_error(body: bytes) -> bool:
    try:
        data = json.loads(body)
    except ValueError:
        return False
    return isinstance(data, dict) and isinstance(data.get("message"), str)


def _reason(error: BaseException) -> str:
    """The schema errors under openapi-core's exception, each clipped: a whole pull request is no message."""
    cause = error.__cause__
    details = getattr(cause, "schema_errors", None) or getattr(error, "schema_errors", None)
    if details:
        return "; ".join(_clip(f"{d.message} at /{'/'.join(map(str, d.absolute_path))}") for d in details)
    return _clip(f"{type(error).__name__}: {error}" + (f" ({cause})" if cause else ""))


def _clip(text: str) -> str:
    return text if len(text) <= _LINE else text[: _LINE - 1] + "…"
