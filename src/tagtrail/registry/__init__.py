"""The OCI distribution client: tags, digests, manifests and configs of any registry, with one
credentials resolver, frugal requests and checked answers."""

from tagtrail.registry.client import Inspection, ManifestHead, RegistryClient
from tagtrail.registry.credentials import CredentialResolver, Credentials, Secret
from tagtrail.registry.media import ImageConfig, Manifest, Platform
from tagtrail.registry.reference import ImageRef, ReferenceError
from tagtrail.registry.stats import RequestStats

__all__ = [
    "CredentialResolver",
    "Credentials",
    "ImageConfig",
    "ImageRef",
    "Inspection",
    "Manifest",
    "ManifestHead",
    "Platform",
    "ReferenceError",
    "RegistryClient",
    "RequestStats",
    "Secret",
]
