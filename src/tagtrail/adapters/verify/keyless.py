"""Keyless provenance, checked offline: a Sigstore bundle made in a GitHub Actions run, verified with
sigstore-python against a trusted root on disk (the public-good instance's, as sigstore-python ships it, or a
configured file), never fetching TUF, Fulcio or Rekor.

sigstore-python proves the cryptography: the certificate chains to the trusted root's Fulcio CA at the time
the transparency log recorded the entry, its SCT is signed by a trusted CT log, the log's inclusion proof,
checkpoint and promise are signed by a trusted log key, and the signature covers the subject (a DSSE
envelope, or a message signature over the image's digest). This module then reads who signed from the
certificate's Fulcio extensions (OIDs 1.3.6.1.4.1.57264.1.*) and holds them against the configured
identity: the OIDC issuer, the repository, the workflow file, a GitHub-hosted runner. What an attestation
says about the build (the in-toto subject, the SLSA predicate's commit) is read here too; the ref and commit
are held against the tag's claims in `provenance`, where the tag is known.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from tagtrail.domain.provenance import AttestationAnswer
from tagtrail.domain.reasons import Reason, Refused
from tagtrail.errors import ConfigError, Problem

if TYPE_CHECKING:  # sigstore is imported where a bundle is checked, not by every deploy
    from cryptography.x509 import Certificate
    from sigstore.models import Bundle, TrustedRoot

Require = Literal["attestation", "signature", "either"]
IN_TOTO = "application/vnd.in-toto+json"
SLSA_PROVENANCE = ("https://slsa.dev/provenance/v1", "https://slsa.dev/provenance/v0.2")
_FULCIO = "1.3.6.1.4.1.57264.1."
_EXTENSIONS = {  # name → (the newer DER-encoded OID, the legacy raw one)
    "issuer": ("8", "1"),
    "signer": ("9", None),
    "runner": ("11", None),
    "repository": ("12", "5"),
    "commit": ("13", "3"),
    "ref": ("14", "6"),
    "run": ("21", None),
}


@dataclass(frozen=True)
class Identity:
    """Who must have made the bundle: a run of `workflow` in `repository`, by `issuer`'s tokens."""

    repository: str
    workflow: str
    issuer: str
    self_hosted: bool = False


@dataclass(frozen=True)
class Proven:
    """What one bundle proves (every field read from what sigstore-python verified)."""

    kind: Literal["attestation", "signature"]
    issuer: str
    repository: str  # OWNER/REPO
    workflow: str  # the signing workflow's file in it
    ref: str
    commit: str
    runner: str
    run: str  # the run's URL
    log_index: int
    predicate_commit: str | None = None  # an attestation's SLSA resolved dependency

    def answer(self) -> AttestationAnswer:
        commits = (self.commit, *([self.predicate_commit] if self.predicate_commit else []))
        return AttestationAnswer(None, self.summary(), self.ref, commits)

    def summary(self) -> str:
        return (
            f"{self.kind} by {self.repository}/{self.workflow} run {self.run or '?'}, commit {self.commit},"
            f" ref {self.ref}, log index {self.log_index}"
        )


@dataclass(frozen=True)
class Checked:
    """One bundle's outcome: what it proves, or the refusal code and why."""

    where: str
    proven: Proven | None
    code: Refused | None = None
    problem: str = ""


def production_root() -> TrustedRoot:
    """The public-good instance's trusted root, as this sigstore-python release embeds it (no TUF)."""
    from sigstore._internal.tuf import DEFAULT_TUF_URL  # noqa: PLC0415
    from sigstore._utils import read_embedded  # noqa: PLC0415
    from sigstore.models import TrustedRoot  # noqa: PLC0415
    from sigstore_models.trustroot import v1  # noqa: PLC0415

    return TrustedRoot(v1.TrustedRoot.from_json(read_embedded("trusted_root.json", DEFAULT_TUF_URL)))


def load_root(text: bytes) -> TrustedRoot:
    """A trusted root file's content; ValueError when it is not one."""
    from sigstore.models import TrustedRoot  # noqa: PLC0415
    from sigstore_models.trustroot import v1  # noqa: PLC0415

    try:
        return TrustedRoot(v1.TrustedRoot.from_json(text))
    except Exception as exc:  # pydantic, protobuf-JSON and sigstore errors alike: the file is not usable
        raise ValueError(f"not a Sigstore trusted root ({str(exc).splitlines()[0][:200]})") from None


class _Recorded:
    """A verification policy that accepts every certificate: the identity is checked afterwards, from the
    verified certificate, so that each mismatch gets its own refusal code."""

    def verify(self, cert: Certificate) -> None:
        return None


def check(
    raw: bytes, digest: str, root: TrustedRoot, identity: Identity, require: Require, where: str
) -> Checked:
    """One bundle (its JSON bytes) for the image at `digest` (sha256:…)."""
    from sigstore.errors import Error as SigstoreError  # noqa: PLC0415
    from sigstore.models import Bundle  # noqa: PLC0415
    from sigstore.verify import Verifier  # noqa: PLC0415

    try:
        bundle = Bundle.from_json(raw)
    except Exception as exc:  # a malformed bundle is the publisher's problem, not a crash
        return Checked(where, None, Reason.ATTESTATION_INVALID, f"not a Sigstore bundle ({_first(exc)})")
    kind: Literal["attestation", "signature"] = (
        "attestation" if bundle._inner.dsse_envelope is not None else "signature"
    )
    if require not in ("either", kind):
        return Checked(where, None, Reason.NOT_ATTESTED, f"a {kind}, and deploy.verify.require is {require}")
    if not digest.startswith("sha256:") or len(digest) != 71:
        return Checked(where, None, Reason.ATTESTATION_INVALID, f"{digest[:19]}… is not a sha256 digest")
    predicate: str | None = None
    try:
        verifier = Verifier(trusted_root=root)
        if kind == "attestation":
            kind_of, payload = verifier.verify_dsse(bundle, _Recorded())
            predicate, problem = _statement(kind_of, payload, digest)
            if problem:
                return Checked(where, None, Reason.ATTESTATION_INVALID, problem)
        else:
            from sigstore.hashes import Hashed  # noqa: PLC0415
            from sigstore_models.common.v1 import HashAlgorithm  # noqa: PLC0415

            hashed = Hashed(algorithm=HashAlgorithm.SHA2_256, digest=bytes.fromhex(digest[7:]))
            verifier.verify_artifact(hashed, bundle, _Recorded())
        proven = _proven(bundle, kind, predicate)
    except SigstoreError as exc:
        return Checked(where, None, Reason.ATTESTATION_INVALID, f"does not verify: {_first(exc)}")
    except (
        Exception
    ) as exc:  # anyone can push a bundle: what the libraries raise over a hostile one refuses it
        return Checked(where, None, Reason.ATTESTATION_INVALID, f"cannot be read: {_first(exc)}")
    if proven is None:
        return Checked(
            where, None, Reason.ATTESTED_IDENTITY_MISMATCH, "its certificate names no GitHub Actions run"
        )
    problem = _identity_problem(proven, identity)
    if problem:
        return Checked(where, proven, Reason.ATTESTED_IDENTITY_MISMATCH, problem)
    return Checked(where, proven)


def judge(checked: list[Checked], digest: str) -> AttestationAnswer:
    """Proven when one bundle proves the identity; else the refusal of the bundle that came closest."""
    for each in checked:
        if each.code is None and each.proven is not None:
            return each.proven.answer()
    if not checked:
        return AttestationAnswer(Reason.NOT_ATTESTED, f"no Sigstore bundle for {digest[:19]}… was found")
    order = (Reason.ATTESTED_IDENTITY_MISMATCH, Reason.ATTESTATION_INVALID, Reason.NOT_ATTESTED)
    closest = min(checked, key=lambda c: order.index(c.code) if c.code in order else len(order))
    code = closest.code or Reason.ATTESTATION_INVALID
    why = "; ".join(f"{c.where}: {c.problem}" for c in checked[:3])
    return AttestationAnswer(code, why)


def _first(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]


def _statement(kind: str, payload: bytes, digest: str) -> tuple[str | None, str]:
    """(the SLSA predicate's commit, why the statement does not vouch for `digest`: "" when it does)."""
    if kind != IN_TOTO:
        return None, f"the envelope holds {kind[:60]}, not an in-toto statement"
    try:
        statement = json.loads(payload)
        subjects = statement["subject"]
        predicate_type = statement.get("predicateType")
    except (ValueError, KeyError, TypeError, AttributeError):
        return None, "the envelope's payload is not an in-toto statement"
    hexpart = digest.removeprefix("sha256:")
    named = (
        [s.get("digest", {}).get("sha256") for s in subjects if isinstance(s, dict)]
        if isinstance(subjects, list)
        else []
    )
    if hexpart not in named:
        return (
            None,
            f"the statement is about {', '.join(str(n)[:12] for n in named[:3]) or 'nothing'}…, not {digest[:19]}…",
        )
    if predicate_type not in SLSA_PROVENANCE:
        return None, f"the statement is a {str(predicate_type)[:80]}, not SLSA provenance"
    return _resolved_commit(statement.get("predicate")), ""


def _resolved_commit(predicate: object) -> str | None:
    """The git commit among the SLSA v1 predicate's resolved dependencies (v0.2: its materials)."""
    if not isinstance(predicate, dict):
        return None
    definition = predicate.get("buildDefinition")
    found = (
        definition.get("resolvedDependencies") if isinstance(definition, dict) else predicate.get("materials")
    )
    for dependency in found if isinstance(found, list) else []:
        digests = dependency.get("digest") if isinstance(dependency, dict) else None
        commit = digests.get("gitCommit") or digests.get("sha1") if isinstance(digests, dict) else None
        if isinstance(commit, str):
            return commit
    return None


def _extension(cert: Certificate, name: str) -> str:
    from cryptography.x509 import ExtensionNotFound, ObjectIdentifier  # noqa: PLC0415

    newer, legacy = _EXTENSIONS[name]
    for suffix, der in ((newer, True), (legacy, False)):
        if suffix is None:
            continue
        try:
            value = cert.extensions.get_extension_for_oid(ObjectIdentifier(_FULCIO + suffix)).value
        except ExtensionNotFound:
            continue
        raw: bytes = getattr(value, "value", b"")
        return _utf8_string(raw) if der else raw.decode(errors="replace")
    return ""


def _utf8_string(der: bytes) -> str:
    """A DER UTF8String's text (Fulcio's newer extensions are one each)."""
    if len(der) < 2 or der[0] != 0x0C:
        return ""
    length, start = der[1], 2
    if length & 0x80:
        count = length & 0x7F
        length, start = int.from_bytes(der[2 : 2 + count], "big"), 2 + count
    return der[start : start + length].decode(errors="replace")


def _proven(
    bundle: Bundle, kind: Literal["attestation", "signature"], predicate: str | None
) -> Proven | None:
    cert = bundle.signing_certificate
    read = {name: _extension(cert, name) for name in _EXTENSIONS}
    repository = (
        urlsplit(read["repository"]).path.strip("/") if "://" in read["repository"] else read["repository"]
    )
    signer = read["signer"] or _san(cert)
    workflow = ""
    if signer:
        path = urlsplit(signer).path.strip("/")
        owner_repo, _, rest = path.partition("/")
        name, _, rest = rest.partition("/")
        workflow_path, _, _ = rest.partition("@")
        workflow = (
            workflow_path if f"{owner_repo}/{name}" == repository else f"{owner_repo}/{name}/{workflow_path}"
        )
    if not read["issuer"] or not repository:
        return None
    return Proven(
        kind,
        read["issuer"],
        repository,
        workflow,
        read["ref"],
        read["commit"],
        read["runner"],
        read["run"],
        int(bundle.log_entry._inner.log_index),
        predicate,
    )


def _san(cert: Certificate) -> str:
    from cryptography.x509 import ExtensionNotFound, SubjectAlternativeName, UniformResourceIdentifier  # noqa: PLC0415

    try:
        names = cert.extensions.get_extension_for_class(SubjectAlternativeName).value
    except ExtensionNotFound:
        return ""
    uris = names.get_values_for_type(UniformResourceIdentifier)
    return uris[0] if uris else ""


def _identity_problem(proven: Proven, identity: Identity) -> str:
    if proven.issuer != identity.issuer:
        return f"issued for tokens of {proven.issuer[:100]}, not {identity.issuer}"
    if proven.repository.lower() != identity.repository.lower():
        return f"made in {proven.repository[:100]}, not {identity.repository}"
    if proven.workflow != identity.workflow.removeprefix("./"):
        return f"made by the workflow {proven.workflow[:120]}, not {identity.workflow}"
    if proven.runner != "github-hosted" and not identity.self_hosted:
        return f"made on a {proven.runner or 'unnamed'} runner, not a GitHub-hosted one (github.self_hosted)"
    return ""


def bundle_of(layer: bytes) -> bytes:
    """A referrer layer's bytes as a bundle: JSON as attest-build-provenance pushes it, or base64 of it."""
    stripped = layer.strip()
    if stripped.startswith(b"{"):
        return stripped
    try:
        return base64.b64decode(stripped, validate=True)
    except (binascii.Error, ValueError):
        return stripped


def repository_of(remote: str | None) -> str | None:
    """OWNER/REPO of a GitHub remote (https, ssh or scp-like), None for any other."""
    if not remote:
        return None
    url = remote.strip()
    if url.startswith("git@"):
        host, _, path = url[4:].partition(":")
    else:
        parts = urlsplit(url)
        host, path = parts.hostname or "", parts.path
    parts_ = path.strip("/").removesuffix(".git").split("/")
    return "/".join(parts_) if host == "github.com" and len(parts_) == 2 and all(parts_) else None


def trusted_root(path: Path | None) -> TrustedRoot:
    """The configured trusted root file, or the public-good instance's; a file that is not one is a
    config error naming it."""
    if path is None:
        return production_root()
    try:
        return load_root(path.read_bytes())
    except OSError as exc:
        raise _problem(str(path), f"cannot read the trusted root ({exc.strerror})") from None
    except ValueError as exc:
        raise _problem(str(path), str(exc)) from None


def _problem(where: str, message: str) -> ConfigError:
    return ConfigError([Problem(where, None, None, "deploy.verify.github.trusted_root", message)])
