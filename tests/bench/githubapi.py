"""A local stand-in for GitHub's REST endpoint "Create a workflow dispatch event", answering as GitHub's
REST description says (GitHub itself cannot be reached from here):

    POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches
    body {"ref": <branch or tag>, "inputs": {<name>: <string>, …}}   (inputs: at most 25 of the workflow's)
    204 No Content; 404 for an unknown repository or workflow; 401 without a valid token ("Bad
    credentials"); 422 when the workflow has no such input ("Unexpected inputs provided: [...]") or the ref
    is missing; every error body is {"message": …, "documentation_url": …}.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bench.httpserver import serve, stop

DOCS = "https://docs.github.com/rest/actions/workflows#create-a-workflow-dispatch-event"


@dataclass
class GitHubStandIn:
    """Knows one repository, its workflows and their inputs; records each accepted dispatch."""

    repository: str
    token: str
    workflows: dict[str, tuple[str, ...]]  # file name → the inputs its workflow_dispatch declares
    dispatches: list[dict[str, Any]] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any] | None]:
        if headers.get("authorization") != f"Bearer {self.token}":
            return 401, {"message": "Bad credentials", "documentation_url": DOCS}
        prefix = f"/repos/{self.repository}/actions/workflows/"
        if not path.startswith(prefix) or not path.endswith("/dispatches"):
            return 404, {"message": "Not Found", "documentation_url": DOCS}
        workflow = path.removeprefix(prefix).removesuffix("/dispatches")
        if workflow not in self.workflows:
            return 404, {"message": "Not Found", "documentation_url": DOCS}
        try:
            data = json.loads(body)
        except ValueError:
            return 400, {"message": "Problems parsing JSON", "documentation_url": DOCS}
        if not isinstance(data, dict) or not isinstance(data.get("ref"), str):
            return 422, {"message": 'Invalid request.\n\n"ref" wasn\'t supplied.', "documentation_url": DOCS}
        inputs = data.get("inputs") or {}
        unexpected = sorted(set(inputs) - set(self.workflows[workflow]))
        if unexpected:
            return 422, {"message": f"Unexpected inputs provided: {unexpected}", "documentation_url": DOCS}
        if not all(isinstance(v, str) for v in inputs.values()):
            return 422, {"message": "Invalid value for inputs", "documentation_url": DOCS}
        self.dispatches.append({"workflow": workflow, **data})
        return 204, None

    def start(self) -> GitHubStandIn:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, answer = stand_in.answer(self.path, headers, body)
                if status != 204:
                    stand_in.refused.append(status)
                payload = json.dumps(answer).encode() if answer is not None else b""
                self.send_response(status)
                if payload:
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                """Quiet."""

        self.server = serve(Handler, "github-stand-in")
        return self

    def stop(self) -> None:
        stop(self.server)
