"""A Sigstore instance of the test's own, made without tagtrail's or sigstore-python's code: a certificate
authority (a root and an intermediate, as Fulcio's), a certificate-transparency log key that signs each
leaf's embedded SCT, a transparency log key that signs each entry's promise and checkpoint (as Rekor v1),
and the trusted root file naming them. Its leaf certificates carry Fulcio's GitHub Actions extensions
(OIDs 1.3.6.1.4.1.57264.1.*), so a bundle made here reads as one made in a workflow run; what a test
varies (another repository, workflow, ref, commit) is in the `Run` it signs for."""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from tagtrail.errors import SandboxError
from tagtrail_demo import ImagePusher, PushedImage

ISSUER = "https://token.actions.githubusercontent.com"
BUNDLE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
IN_TOTO = "application/vnd.in-toto+json"
SLSA_V1 = "https://slsa.dev/provenance/v1"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
_SCT_LIST = ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
_FULCIO = "1.3.6.1.4.1.57264.1."


@dataclass(frozen=True)
class Run:
    """The workflow run a certificate is issued to (what GitHub's OIDC token says)."""

    repository: str = "acme/homelab"
    workflow: str = ".github/workflows/build.yml"
    ref: str = "refs/heads/main"
    commit: str = "0" * 40
    run_id: int = 4242
    runner: str = "github-hosted"
    issuer: str = ISSUER

    @property
    def signer(self) -> str:
        return f"https://github.com/{self.repository}/{self.workflow}@{self.ref}"


def _utf8(text: str) -> bytes:
    """A DER UTF8String, as Fulcio encodes its newer extensions."""
    data = text.encode()
    length = (
        bytes([len(data)])
        if len(data) < 128
        else bytes([0x81 if len(data) < 256 else 0x82])
        + len(data).to_bytes(1 if len(data) < 256 else 2, "big")
    )
    return b"\x0c" + length + data


def _octets(data: bytes) -> bytes:
    n = len(data)
    length = (
        bytes([n]) if n < 128 else bytes([0x81]) + bytes([n]) if n < 256 else b"\x82" + n.to_bytes(2, "big")
    )
    return b"\x04" + length + data


def _extensions(run: Run) -> list[tuple[str, bytes]]:
    server = "https://github.com"
    return [
        ("1", run.issuer.encode()),  # the legacy ones: raw bytes
        ("2", b"push"),
        ("3", run.commit.encode()),
        ("4", b"build"),
        ("5", run.repository.encode()),
        ("6", run.ref.encode()),
        ("8", _utf8(run.issuer)),
        ("9", _utf8(run.signer)),
        ("10", _utf8(run.commit)),
        ("11", _utf8(run.runner)),
        ("12", _utf8(f"{server}/{run.repository}")),
        ("13", _utf8(run.commit)),
        ("14", _utf8(run.ref)),
        ("18", _utf8(run.signer)),
        ("19", _utf8(run.commit)),
        ("20", _utf8("push")),
        ("21", _utf8(f"{server}/{run.repository}/actions/runs/{run.run_id}/attempts/1")),
    ]


def _key_id(key: ec.EllipticCurvePublicKey) -> bytes:
    return hashlib.sha256(
        key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    ).digest()


def _spki(key: ec.EllipticCurvePrivateKey) -> str:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def _name(common: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tagtrail tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common),
        ]
    )


@dataclass
class LocalSigstore:
    """A root, an intermediate, a CT log key and a transparency log key, all of this test's."""

    root_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP384R1())
    )
    ca_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP384R1())
    )
    ct_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    log_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    log_index: int = 0

    def __post_init__(self) -> None:
        now = datetime.now(UTC)
        self.since = now - timedelta(days=1)
        self.root = (
            x509.CertificateBuilder()
            .subject_name(_name("tagtrail test fulcio root"))
            .issuer_name(_name("tagtrail test fulcio root"))
            .public_key(self.root_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.since)
            .not_valid_after(now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(_usage(ca=True), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.root_key.public_key()), critical=False
            )
            .sign(self.root_key, hashes.SHA384())
        )
        self.intermediate = (
            x509.CertificateBuilder()
            .subject_name(_name("tagtrail test fulcio intermediate"))
            .issuer_name(self.root.subject)
            .public_key(self.ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.since)
            .not_valid_after(now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_usage(ca=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.ca_key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.root_key.public_key()), critical=False
            )
            .sign(self.root_key, hashes.SHA384())
        )

    def trusted_root(self) -> dict[str, object]:
        """The trusted root naming this instance, in Sigstore's trustedroot+json format."""
        since = self.since.strftime("%Y-%m-%dT%H:%M:%SZ")

        def log(key: ec.EllipticCurvePrivateKey, url: str) -> dict[str, object]:
            return {
                "baseUrl": url,
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": _spki(key),
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": {"start": since},
                },
                "logId": {"keyId": base64.b64encode(_key_id(key.public_key())).decode()},
            }

        chain = [self.intermediate, self.root]
        return {
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [log(self.log_key, "https://rekor.tagtrail.invalid")],
            "certificateAuthorities": [
                {
                    "subject": {"organization": "tagtrail tests", "commonName": "fulcio"},
                    "uri": "https://fulcio.tagtrail.invalid",
                    "certChain": {
                        "certificates": [
                            {
                                "rawBytes": base64.b64encode(
                                    c.public_bytes(serialization.Encoding.DER)
                                ).decode()
                            }
                            for c in chain
                        ]
                    },
                    "validFor": {"start": since},
                }
            ],
            "ctlogs": [log(self.ct_key, "https://ctfe.tagtrail.invalid")],
            "timestampAuthorities": [],
        }

    def write_trusted_root(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.trusted_root(), indent=1))
        return path

    def leaf(self, run: Run, key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
        """A ten-minute certificate for `key`, issued to `run`, with an SCT by the CT log key."""
        now = datetime.now(UTC).replace(microsecond=0)
        serial = x509.random_serial_number()

        def build(sct: bytes) -> x509.Certificate:
            builder = (
                x509.CertificateBuilder()
                .subject_name(x509.Name([]))
                .issuer_name(self.intermediate.subject)
                .public_key(key.public_key())
                .serial_number(serial)
                .not_valid_before(now - timedelta(minutes=1))
                .not_valid_after(now + timedelta(minutes=9))
                .add_extension(_usage(ca=False), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .add_extension(
                    x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()),
                    critical=False,
                )
                .add_extension(
                    x509.SubjectAlternativeName([x509.UniformResourceIdentifier(run.signer)]), critical=True
                )
            )
            for suffix, value in _extensions(run):
                oid = ObjectIdentifier(_FULCIO + suffix)
                builder = builder.add_extension(x509.UnrecognizedExtension(oid, value), critical=False)
            builder = builder.add_extension(
                x509.UnrecognizedExtension(_SCT_LIST, _octets(sct)), critical=False
            )
            return builder.sign(self.ca_key, hashes.SHA256())

        draft = build(self._sct(now, b"", b"\x00" * 8))
        return build(self._sct(now, draft.tbs_precertificate_bytes, None))

    def _sct(self, when: datetime, tbs: bytes, placeholder: bytes | None) -> bytes:
        """One serialized SCT in a list (RFC 6962 §3.2), over the precertificate (`tbs`)."""
        millis = int(when.timestamp() * 1000)
        if placeholder is None:
            issuer = _key_id(self.ca_key.public_key())
            entry = issuer + len(tbs).to_bytes(3, "big") + tbs
            signed = struct.pack("!BBQH", 0, 0, millis, 1) + entry + struct.pack("!H", 0)
            signature = self.ct_key.sign(signed, ec.ECDSA(hashes.SHA256()))
        else:
            signature = placeholder
        sct = (
            b"\x00"
            + _key_id(self.ct_key.public_key())
            + struct.pack("!QH", millis, 0)
            + bytes([4, 3])  # sha256, ecdsa
            + struct.pack("!H", len(signature))
            + signature
        )
        serialized = struct.pack("!H", len(sct)) + sct
        return struct.pack("!H", len(serialized)) + serialized

    def _entry(self, kind: str, body: dict[str, object], when: int) -> dict[str, object]:
        """A Rekor v1 entry for `body`: its promise (SET) and a checkpoint over a log of one entry."""
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        index = self.log_index
        self.log_index += 1
        log_id = _key_id(self.log_key.public_key())
        promise = json.dumps(
            {
                "body": base64.b64encode(canonical).decode(),
                "integratedTime": when,
                "logID": log_id.hex(),
                "logIndex": index,
            },
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
        leaf = hashlib.sha256(b"\x00" + canonical).digest()
        note = f"rekor.tagtrail.invalid - 1\n1\n{base64.b64encode(leaf).decode()}\n"
        signature = self.log_key.sign(note.encode(), ec.ECDSA(hashes.SHA256()))
        envelope = f"{note}\n— rekor.tagtrail.invalid {base64.b64encode(log_id[:4] + signature).decode()}\n"
        return {
            "logIndex": str(index),
            "logId": {"keyId": base64.b64encode(log_id).decode()},
            "kindVersion": {"kind": kind, "version": "0.0.1"},
            "integratedTime": str(when),
            "inclusionPromise": {
                "signedEntryTimestamp": base64.b64encode(
                    self.log_key.sign(promise, ec.ECDSA(hashes.SHA256()))
                ).decode()
            },
            "inclusionProof": {
                "logIndex": "0",
                "rootHash": base64.b64encode(leaf).decode(),
                "treeSize": "1",
                "hashes": [],
                "checkpoint": {"envelope": envelope},
            },
            "canonicalizedBody": base64.b64encode(canonical).decode(),
        }

    def attest(self, run: Run, subject: str, digest: str) -> bytes:
        """A bundle as actions/attest-build-provenance makes it: a DSSE envelope holding an in-toto
        statement about `digest` with an SLSA provenance v1 predicate naming `run`'s commit."""
        statement = provenance(run, subject, digest)
        payload = json.dumps(statement).encode()
        pae = b"DSSEv1 %d %s %d %s" % (len(IN_TOTO), IN_TOTO.encode(), len(payload), payload)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self.leaf(run, key)
        signature = key.sign(pae, ec.ECDSA(hashes.SHA256()))
        pem = base64.b64encode(cert.public_bytes(serialization.Encoding.PEM)).decode()
        body = {
            "apiVersion": "0.0.1",
            "kind": "dsse",
            "spec": {
                "envelopeHash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()},
                "payloadHash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()},
                "signatures": [{"signature": base64.b64encode(signature).decode(), "verifier": pem}],
            },
        }
        envelope = {
            "payload": base64.b64encode(payload).decode(),
            "payloadType": IN_TOTO,
            "signatures": [{"sig": base64.b64encode(signature).decode()}],
        }
        return self._bundle(cert, "dsse", body, {"dsseEnvelope": envelope})

    def sign(self, run: Run, digest: str) -> bytes:
        """A bundle as keyless signing makes it for an image: a message signature over its digest."""
        raw = bytes.fromhex(digest.removeprefix("sha256:"))
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self.leaf(run, key)
        signature = key.sign(raw, ec.ECDSA(Prehashed(hashes.SHA256())))
        pem = base64.b64encode(cert.public_bytes(serialization.Encoding.PEM)).decode()
        body = {
            "apiVersion": "0.0.1",
            "kind": "hashedrekord",
            "spec": {
                "data": {"hash": {"algorithm": "sha256", "value": raw.hex()}},
                "signature": {"content": base64.b64encode(signature).decode(), "publicKey": {"content": pem}},
            },
        }
        message = {
            "messageDigest": {"algorithm": "SHA2_256", "digest": base64.b64encode(raw).decode()},
            "signature": base64.b64encode(signature).decode(),
        }
        return self._bundle(cert, "hashedrekord", body, {"messageSignature": message})

    def _bundle(
        self, cert: x509.Certificate, kind: str, body: dict[str, object], content: dict[str, object]
    ) -> bytes:
        """A v0.3 bundle: the leaf certificate, the log's entry for `body`, and what was signed."""
        der = cert.public_bytes(serialization.Encoding.DER)
        entry = self._entry(kind, body, int(datetime.now(UTC).timestamp()))
        material = {"certificate": {"rawBytes": base64.b64encode(der).decode()}, "tlogEntries": [entry]}
        return json.dumps({"mediaType": BUNDLE_V03, "verificationMaterial": material, **content}).encode()


def _usage(*, ca: bool) -> x509.KeyUsage:
    """A CA signs certificates; a leaf signs artifacts (Fulcio's digitalSignature)."""
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def provenance(run: Run, subject: str, digest: str, commit: str | None = None) -> dict[str, object]:
    """An in-toto statement with the SLSA provenance v1 predicate GitHub's attestation writes."""
    server = "https://github.com"
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": subject, "digest": {"sha256": digest.removeprefix("sha256:")}}],
        "predicateType": SLSA_V1,
        "predicate": {
            "buildDefinition": {
                "buildType": "https://actions.github.io/buildtypes/workflow/v1",
                "externalParameters": {
                    "workflow": {
                        "ref": run.ref,
                        "repository": f"{server}/{run.repository}",
                        "path": run.workflow,
                    }
                },
                "resolvedDependencies": [
                    {
                        "uri": f"git+{server}/{run.repository}@{run.ref}",
                        "digest": {"gitCommit": commit or run.commit},
                    }
                ],
            },
            "runDetails": {
                "builder": {"id": f"{server}/{run.repository}/{run.workflow}@{run.ref}"},
                "metadata": {
                    "invocationId": f"{server}/{run.repository}/actions/runs/{run.run_id}/attempts/1"
                },
            },
        },
    }


def attach(pusher: ImagePusher, image: PushedImage, bundle: bytes, predicate: str | None = SLSA_V1) -> str:
    """`bundle` attached to `image` as attest-build-provenance's push-to-registry does: an OCI manifest with
    the bundle as its layer and the image as its `subject`, listed in the `sha256-<hex>` fallback index
    (the test registry has no referrers API). Returns the referrer's digest."""
    empty = b"{}"
    config = pusher.upload_blob(image.repository, empty)
    layer = pusher.upload_blob(image.repository, bundle)
    annotations = {"dev.sigstore.bundle.content": "dsse-envelope" if predicate else "message-signature"}
    if predicate:
        annotations["dev.sigstore.bundle.predicateType"] = predicate
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": BUNDLE_V03,
            "config": {"mediaType": OCI_EMPTY, "digest": config, "size": len(empty)},
            "layers": [{"mediaType": BUNDLE_V03, "digest": layer, "size": len(bundle)}],
            "subject": {"mediaType": image.media_type, "digest": image.digest, "size": _size(pusher, image)},
            "annotations": annotations,
        },
        sort_keys=True,
    ).encode()
    digest = hashlib.sha256(manifest).hexdigest()
    pushed = pusher.put_manifest(image.repository, f"sha256:{digest}", manifest, OCI_MANIFEST)
    tag = image.digest.replace(":", "-")
    listed = _listed(pusher, image, tag)
    listed.append(
        {
            "mediaType": OCI_MANIFEST,
            "digest": pushed,
            "size": len(manifest),
            "artifactType": BUNDLE_V03,
            "annotations": annotations,
        }
    )
    index = json.dumps(
        {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": listed}
    ).encode()
    pusher.put_manifest(image.repository, tag, index, "application/vnd.oci.image.index.v1+json")
    return pushed


def _size(pusher: ImagePusher, image: PushedImage) -> int:
    return len(pusher.get_manifest(image.repository, image.digest, image.media_type))


def _listed(pusher: ImagePusher, image: PushedImage, tag: str) -> list[dict[str, object]]:
    try:
        body = pusher.get_manifest(image.repository, tag, "application/vnd.oci.image.index.v1+json")
    except SandboxError:  # no index yet
        return []
    manifests = json.loads(body).get("manifests", [])
    return list(manifests) if isinstance(manifests, list) else []
