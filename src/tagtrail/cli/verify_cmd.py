"""`tagtrail verify IMAGE[:TAG|@DIGEST]`: an image's claims, signature and keyless provenance checked as a
deploy checks them, one line per check, saying why it passed or failed; exit 1 when one failed."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tagtrail.adapters.gitrepo import GitRepo
from tagtrail.adapters.registry import ImageRef, RegistryClient
from tagtrail.adapters.verify import load_keys, verify_image
from tagtrail.adapters.verify.attached import Expected, expected, verify_attached
from tagtrail.cli import output
from tagtrail.cli.app import app, state
from tagtrail.cli.registry_cmd import InsecureOption, JsonOption, _resolve
from tagtrail.config import Config, RegistryConfig
from tagtrail.domain.provenance import Claims, CommitAnswer, CommitState, attested_refs, attested_refusal
from tagtrail.domain.scheme import ParsedTag
from tagtrail.errors import GitError, TagtrailError
from tagtrail.reconcile.claims import Memory, Provenance

if TYPE_CHECKING:
    from tagtrail.adapters.verify.signatures import PublicKey


@dataclass
class Report:
    image: str
    digest: str | None = None
    lines: list[tuple[str, str, str]] = field(default_factory=list)  # (ok | FAIL | --, check, why)

    def add(self, passed: bool | None, check: str, why: str) -> None:
        """One check; None: looked at and set aside (a bad signature beside a valid one)."""
        self.lines.append(("--" if passed is None else "ok" if passed else "FAIL", check, why))

    @property
    def passed(self) -> bool:
        return all(status != "FAIL" for status, _, _ in self.lines)


@app.command("verify")
def verify(
    ctx: typer.Context,
    image: Annotated[str, typer.Argument(help="IMAGE:TAG or IMAGE@sha256:… (or an app name with :TAG).")],
    key: Annotated[
        list[Path] | None,
        typer.Option("--key", help="A public key (PEM) to verify with, instead of deploy.verify.keys."),
    ] = None,
    insecure: InsecureOption = False,
    json: JsonOption = False,
) -> None:
    """Check what a deploy checks before it trusts a build: its date, its commit on the deploy branch, its
    revision label, (with keys) its cosign signature, and (with deploy.verify.github) the Sigstore bundle of
    the workflow run that built it. Prints each check and why it passed or failed."""
    current = state(ctx)
    ref, registries, config = _resolve(current, image, insecure)
    if not ref.tag and not ref.digest:
        raise TagtrailError(f"'{ref}' names no tag or digest; write IMAGE:TAG or IMAGE@sha256:…")
    base = current.project_root() if config is not None else Path.cwd()
    keys = _keys(config, ref, [str(k) for k in key or []], base)
    source = _source(base) if config is not None else None
    attesting = _attesting(config, ref, base, source)
    report = asyncio.run(_check(ref, registries, config, keys, source, attesting))
    if json:
        output.print_json(
            {
                "image": report.image,
                "digest": report.digest,
                "passed": report.passed,
                "checks": [{"status": status, "check": c, "why": why} for status, c, why in report.lines],
            }
        )
    else:
        typer.echo(f"image   {report.image}")
        typer.echo(f"digest  {report.digest or '-'}")
        for status, check, why in report.lines:
            typer.echo(f"{status:<4}    {check}: {why}")
    if not report.passed:
        raise typer.Exit(1)


def _keys(config: Config | None, ref: ImageRef, files: list[str], base: Path) -> list[PublicKey]:
    if files:
        return load_keys([f"file:{Path(f).resolve()}" for f in files], base)
    if config is None:
        return []
    app_name = ref.repository.rsplit("/", 1)[-1]
    settings = config.deploy.verify_of(app_name) if config.image_for(app_name) == ref.name else None
    settings = settings or config.deploy.verify
    return load_keys(list(settings.keys), base) if settings else []


def _attesting(config: Config | None, ref: ImageRef, base: Path, source: GitRepo | None) -> Expected | None:
    """What the image's Sigstore bundles must prove (deploy.verify.github, the app's or deploy's)."""
    if config is None:
        return None
    app_name = ref.repository.rsplit("/", 1)[-1]
    settings = config.deploy.verify_of(app_name) if config.image_for(app_name) == ref.name else None
    settings = settings or config.deploy.verify
    if settings is None or settings.github is None:
        return None
    return expected(
        settings.github, settings.require, base, lambda: source.remote_url("origin") if source else None
    )


def _source(base: Path) -> GitRepo | None:
    try:
        return GitRepo.discover(base)
    except GitError:
        return None


async def _check(
    ref: ImageRef,
    registries: dict[str, RegistryConfig],
    config: Config | None,
    keys: list[PublicKey],
    source: GitRepo | None,
    attesting: Expected | None = None,
) -> Report:
    report = Report(str(ref))
    async with RegistryClient(registries) as client:
        digest = ref.digest or (await client.head(ref)).digest
        report.digest = digest
        said = await client.revision(ref.with_digest(digest))  # as a deploy reads it
        label, check = said.commit, f"revision {said.said_by}"
        parsed = config.tag_scheme.parse(ref.tag) if config is not None and ref.tag else None
        full: str | None = None
        if isinstance(parsed, ParsedTag) and config is not None:
            full = await _claims(report, parsed, config, client, source)
        if label is None:
            report.add(True, "revision label", "the image has none (nothing to disagree with)")
        elif isinstance(parsed, ParsedTag):
            agrees = label == full if full else label.startswith(parsed.sha)
            report.add(agrees, check, f"{label} {'is' if agrees else 'is not'} {full or parsed.sha}")
        else:
            report.add(True, check, f"{label} (no tag of the scheme to compare with)")
        await _signature(report, client, ref, digest, keys)
        if attesting is not None:
            tag = parsed if isinstance(parsed, ParsedTag) else None
            await _attestation(report, client, ref, digest, attesting, config, tag, full)
    return report


async def _signature(
    report: Report, client: RegistryClient, ref: ImageRef, digest: str, keys: list[PublicKey]
) -> None:
    if not keys:
        report.add(True, "signature", "not checked: no keys (deploy.verify.keys or --key)")
        return
    found = await verify_image(client, ref, digest, keys)
    for looked in found.looked:
        report.add(True, "looked", looked)
    if not found.answer.valid:  # one line: why none is valid
        report.add(False, "signature", found.answer.detail)
        return
    for checked in found.checked:  # one valid signature is enough: the others are set aside
        report.add(
            True if checked.problem is None else None,
            "signature",
            f"{checked.where}: {checked.problem or 'valid'}",
        )


async def _attestation(
    report: Report,
    client: RegistryClient,
    ref: ImageRef,
    digest: str,
    attesting: Expected,
    config: Config | None,
    parsed: ParsedTag | None,
    full: str | None,
) -> None:
    """The image's Sigstore bundles, as a deploy verifies them; what the valid one proves, held against the
    tag (the run's ref its deploy branch, the run's commit its commit)."""
    found = await verify_attached(client, ref, digest, attesting.root, attesting.identity, attesting.require)
    for looked in found.looked:
        report.add(True, "looked", looked)
    answer = found.answer
    if answer.refused is not None:
        report.add(False, "provenance", f"{answer.refused}: {answer.detail}")
        return
    for checked in found.checked:
        if checked.code is not None:
            report.add(None, "provenance", f"{checked.where}: {checked.problem}")
    report.add(True, "provenance", answer.detail)
    if parsed is None or config is None:
        report.add(True, "attested", "not compared: no tag of the scheme")
        return
    refs = attested_refs(config.tag_scheme.branch_token, tuple(config.deploy.branches), attesting.ref)
    commits = {parsed.sha: CommitAnswer(CommitState.ON_BRANCH, full)} if full else None
    refusal = attested_refusal(parsed, answer, Claims(commits=commits, attested_refs=refs))
    if refusal is not None:
        report.add(False, "attested", f"{refusal.code}: {refusal.sentence}")
    else:
        report.add(
            True, "attested", f"the run's ref and commit are the tag's ({answer.ref}, {answer.commits[0]})"
        )


async def _claims(
    report: Report, parsed: ParsedTag, config: Config, client: RegistryClient, source: GitRepo | None
) -> str | None:
    """The date and the commit a tag of the scheme claims; the commit's full sha where it is known."""
    skew = config.deploy.max_skew
    when = min(parsed.instants) if parsed.instants else None
    future = when is not None and when > datetime.now(UTC) + skew
    report.add(
        not future,
        "date",
        f"{when:%Y-%m-%d %H:%M:%S} UTC" + (" is in the future" if future else "")
        if when
        else "none in the tag",
    )
    if source is None or not parsed.sha:
        report.add(True, "commit", "not checked: no source repository here")
        return None
    branches = tuple(b for b in config.deploy.branches if config.tag_scheme.branch_token(b) == parsed.branch)
    if not branches:
        report.add(False, "commit", f"the tag's branch '{parsed.branch}' is not a deploy branch")
        return None
    answers = await Provenance(client, source, Memory(), branches).commits([(parsed.sha, branches)])
    answer = answers[parsed.sha]
    ok = answer.state is CommitState.ON_BRANCH
    what = {
        CommitState.ON_BRANCH: f"{answer.full} is on {answer.branch}",
        CommitState.AMBIGUOUS: f"{parsed.sha} names more than one commit",
        CommitState.MISSING: f"no commit {parsed.sha} exists (after fetching {answer.branch})",
        CommitState.OTHER_BRANCH: f"{answer.full} is not on {answer.branch}",
    }[answer.state]
    report.add(ok, "commit", what)
    return answer.full
