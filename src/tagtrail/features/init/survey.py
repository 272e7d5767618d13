"""Reading a repository into a proposed tagtrail.yaml: apps, scheme, image, deploy files, branch."""

from __future__ import annotations

import re
from pathlib import Path

from tagtrail.adapters.apps import discover
from tagtrail.adapters.gitrepo import GitRepo
from tagtrail.adapters.refs import Matcher
from tagtrail.adapters.registry import ImageRef
from tagtrail.config import parse_config
from tagtrail.errors import GitError, TagtrailError
from tagtrail.features.init.choice import Choice
from tagtrail.features.init.deployfiles import (
    OTHER,
    deploy_files,
    infer_aliases,
    is_loopback,
    read_yaml_files,
)
from tagtrail.features.init.folders import find_apps
from tagtrail.features.init.naming import choose_image, disagreement
from tagtrail.features.init.proposal import Proposal
from tagtrail.features.init.reader import Reader
from tagtrail.features.init.render import render
from tagtrail.features.init.stacks import find_stacks
from tagtrail.features.init.workflow import choose_scheme, read_workflows

_GITHUB = re.compile(r"github\.com[:/]+([^/\s]+)/([^/\s]+?)(?:\.git)?/*$")


def github_repository(url: str | None) -> str | None:
    """owner/repo of a GitHub remote URL (https or ssh), lowercase as ghcr.io names images."""
    match = _GITHUB.search(url or "")
    return f"{match[1]}/{match[2]}".lower() if match else None


def survey(root: Path) -> Proposal:
    """Read the repository at `root` (its top folder) and propose a tagtrail.yaml for it."""
    repo = GitRepo(root)
    files = [
        f for f in repo.run("ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0") if f
    ]
    owner_repo = github_repository(repo.remote_url())
    reader = Reader(root)
    found = find_apps(reader, files)
    steps = read_workflows(reader, files, owner_repo, found.names)
    yaml_files = read_yaml_files(reader, files)
    todo = list(found.todo)
    image, aliases, pushed_by = choose_image(steps, yaml_files, found.names, owner_repo, todo)
    inferred, doubtful = infer_aliases(yaml_files, found.names, image.value)
    known = {a.value for a in aliases}
    aliases += [Choice(t, f"{m.path}:{m.line} names {m.text}") for t, m in inferred.items() if t not in known]
    told = disagreement(image, [a.value for a in aliases], yaml_files, found.names)
    if told is not None:  # said once, with both names, instead of as a doubtful alias
        template, sentence = told
        doubtful.pop(template, None)
        doubtful[template] = sentence
    todo += doubtful.values()
    matcher = Matcher(image.value, [a.value for a in aliases])
    host = ImageRef.parse(image.value.replace("{app}", "app")).registry
    deploy, unwritable = deploy_files(yaml_files, matcher, found.names)
    todo += unwritable
    proposal = Proposal(
        root,
        found,
        choose_scheme(sorted(steps, key=lambda s: s.where != pushed_by)),  # the tags of the step chosen
        image,
        aliases,
        [host] if is_loopback(host) else [],  # plain HTTP is allowed only where it cannot leave the machine
        deploy,
        default_branch(repo),
        todo,
        skipped=reader.said(),
    )
    proposal.todo += proposal.scheme.todo
    if proposal.files:  # applied_by follows who applies the deploy files: only where there are some
        proposal.stacks, others = find_stacks(reader, yaml_files, repo.remote_url(), proposal.branch.value)
        proposal.todo += others
    proposal.todo += [
        f"{f.path} names an app's image but is no kind of deploy file init knows (a compose file?): deploys"
        " will rewrite it; take it out of deploy.git.files if they should not"
        for f in proposal.files
        if f.kind == OTHER
    ]
    if not proposal.files:
        proposal.todo.append(
            "no file here names an app's image: add the files that deploy them to deploy.git.files"
            " (a Pulumi stack config, manifests, a kustomization or Helm values)"
        )
    proposal.text = render(proposal)
    try:
        proposal.config = parse_config(proposal.text, "the tagtrail.yaml init proposes")
        proposal.apps = discover(root, proposal.config) if (root / found.root).is_dir() else []
    except TagtrailError as exc:
        raise TagtrailError(f"{exc} — this is a bug in tagtrail init; please report it") from exc
    unnamed = [app for app, count in proposal.references().items() if count == 0]
    if proposal.files and unnamed:
        proposal.todo.append(
            f"no deploy file names {', '.join(unnamed)}: tagtrail builds them but deploys them nowhere"
            " until a file in deploy.git.files names their image"
        )
    return proposal


def default_branch(repo: GitRepo) -> Choice:
    """The branch whose builds deploy: the remote's default, else main or master, else the one checked out."""
    try:
        remote_head = repo.run("symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD")
        return Choice(remote_head.split("/", 1)[-1], "the remote's default branch (origin/HEAD)")
    except GitError:
        pass
    for name in ("main", "master"):
        if repo.resolve(f"refs/heads/{name}") is not None:
            return Choice(name, "the repository's main branch")
    current = repo.current_branch()
    if current:
        return Choice(current, "the branch checked out (the repository has no main or master)")
    return Choice("main", "git's usual default (the repository has no branch yet)")
