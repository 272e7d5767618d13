"""cosign's key-based signatures made without tagtrail's code: keys and signatures by the `openssl` CLI
(ECDSA P-256 over the payload with SHA-256, as cosign's documentation shows for interoperability), laid
out as cosign lays them out (the simple-signing payload as a layer blob of a manifest tagged
`sha256-<hex>.sig`, the base64 signature in the layer's `dev.cosignproject.cosign/signature` annotation),
and pushed through the registry's API."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tagtrail_demo import ImagePusher

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@dataclass(frozen=True)
class Key:
    private: Path
    public: Path

    @property
    def pem(self) -> str:
        return self.public.read_text()


def openssl_key(folder: Path, name: str) -> Key:
    """An ECDSA P-256 key pair, as `openssl ecparam -genkey -name prime256v1` makes it."""
    folder.mkdir(parents=True, exist_ok=True)
    private, public = folder / f"{name}.key", folder / f"{name}.pub"
    subprocess.run(
        ["openssl", "ecparam", "-genkey", "-name", "prime256v1", "-noout", "-out", str(private)], check=True
    )
    subprocess.run(
        ["openssl", "ec", "-in", str(private), "-pubout", "-out", str(public)],
        check=True,
        capture_output=True,
    )
    return Key(private, public)


def payload(digest: str, reference: str) -> bytes:
    """The simple-signing document cosign signs."""
    return json.dumps(
        {
            "critical": {
                "identity": {"docker-reference": reference},
                "image": {"docker-manifest-digest": digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        },
        separators=(",", ":"),
    ).encode()


def openssl_sign(key: Key, data: bytes) -> str:
    """`openssl dgst -sha256 -sign KEY` over the payload: a DER ECDSA signature, base64 as cosign stores it."""
    folder = key.private.parent
    source = folder / f"payload-{hashlib.sha256(data).hexdigest()[:12]}.json"
    source.write_bytes(data)
    signature = subprocess.run(
        ["openssl", "dgst", "-sha256", "-sign", str(key.private), str(source)],
        check=True,
        capture_output=True,
    ).stdout
    return base64.b64encode(signature).decode()


def push_signatures(
    pusher: ImagePusher, repository: str, digest: str, layers: list[tuple[bytes, str]]
) -> str:
    """A cosign signature manifest for `digest`, one layer per (payload, signature); returns its digest."""
    descriptors = []
    for body, signature in layers:
        layer_digest = pusher.upload_blob(repository, body)
        descriptors.append(
            {
                "mediaType": SIMPLE_SIGNING,
                "digest": layer_digest,
                "size": len(body),
                "annotations": {"dev.cosignproject.cosign/signature": signature},
            }
        )
    config = json.dumps(
        {
            "architecture": "",
            "config": {},
            "created": "0001-01-01T00:00:00Z",
            "history": [{"created": "0001-01-01T00:00:00Z"}],
            "os": "",
            "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in descriptors]},
        }
    ).encode()
    config_digest = pusher.upload_blob(repository, config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": len(config),
            },
            "layers": descriptors,
        }
    ).encode()
    tag = digest.replace(":", "-") + ".sig"
    return pusher.put_manifest(repository, tag, manifest, OCI_MANIFEST)


def sign(pusher: ImagePusher, key: Key, host: str, repository: str, digest: str) -> str:
    """Sign `digest` as `cosign sign --key` would, with openssl; returns the signature manifest's digest."""
    body = payload(digest, f"{host}/{repository}")
    return push_signatures(pusher, repository, digest, [(body, openssl_sign(key, body))])
