"""Image references in YAML files: found by image repository, rewritten byte for byte.

A reference is any YAML scalar, at any depth and under any key, that names a managed image (the `image:`
template of tagtrail.yaml, or one of `deploy.aliases`; under an `image:` key a bare Docker Hub name such as
`nginx` counts too), plus the split forms tools use: Helm values (`repository`/`name`/`image` + `tag`/`version`
[+ `digest`], with or without `registry`, or key paths declared in `deploy.apps.<app>.helm`) and
kustomization `images:` entries (`name`/`newName` + `newTag` + `digest`). A Flux-style
`# {"$imagepolicy": "ns:policy[:tag|:name|:digest]"}` marker of one of `deploy.marker_namespaces` makes the
scalar before it a reference of app `policy` (or that part of one) whatever it names.

Three steps, each its own module: locate (`_find`, `_split`: node positions ruamel.yaml reports, each node
once however many aliases name it), edit (`_edit`: replace value tokens only; the repository stays as
written), prove (`_verify`: parse the result again; every edited app reads back as its target and has as
many references as before). Every other byte of the file stays as it was (DESIGN invariant 5); anything
tagtrail cannot do that way is refused with one line, `file:line: what is wrong; what to do`.
"""

from tagtrail.adapters.refs._edit import rewrite, rewrite_found
from tagtrail.adapters.refs._find import find
from tagtrail.adapters.refs._model import (
    HelmKeys,
    Image,
    Kind,
    Matcher,
    Reference,
    Span,
    normalise,
    split_written,
)

__all__ = [
    "HelmKeys",
    "Image",
    "Kind",
    "Matcher",
    "Reference",
    "Span",
    "find",
    "normalise",
    "rewrite",
    "rewrite_found",
    "split_written",
]
