"""The OCI distribution client: tags, digests, manifests and configs of any registry, with one
credentials resolver, frugal requests and checked answers."""

from tagtrail.errors import InvalidReference
from tagtrail.registry.client import Inspection, ManifestHead, RegistryClient, Revision
from tagtrail.registry.credentials import CredentialResolver, Credentials, Secret
from tagtrail.registry.media import ImageConfig, Manifest, Platform
from tagtrail.registry.reference import ImageRef
from tagtrail.registry.stats import RequestStats

__all__ = [
    "CredentialResolver",
    "Credentials",
    "ImageConfig",
    "ImageRef",
    "Inspection",
    "InvalidReference",
    "Manifest",
    "ManifestHead",
    "Platform",
    "RegistryClient",
    "RequestStats",
    "Revision",
    "Secret",
]
