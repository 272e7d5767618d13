"""The deploy index's own bookkeeping (targets/index.py), without git: which files a hint's apps need, what
a commit of tagtrail's leaves it knowing, and the references it hands the history so nothing is parsed
twice. Whether it is trusted against a moved branch is tested on real git in
tests/integration/test_one_app_push.py."""

from __future__ import annotations

from tagtrail.adapters.refs import Matcher, find
from tagtrail.targets.index import DeployIndex

M = Matcher("ghcr.io/acme/homelab/{app}", [])
D = "sha256:" + "1" * 64
TEXTS = {
    "deploy/both.yaml": f"a:\n  image: ghcr.io/acme/homelab/web:v1@{D}\nb:\n  image: ghcr.io/acme/homelab/api:v1@{D}\n",
    "deploy/one.yaml": f"image: ghcr.io/acme/homelab/web:v1@{D}\n",
    "deploy/three.yaml": f"image: ghcr.io/acme/homelab/jobs:v1@{D}\n",
}


def indexed() -> DeployIndex:
    index = DeployIndex(["deploy/*.yaml"], head="c0", config_text="config")
    index.texts = dict(TEXTS)
    index.found = {path: find(path, text, M) for path, text in TEXTS.items()}
    return index


def test_the_files_of_some_apps_are_those_holding_any_of_their_references_in_read_order() -> None:
    index = indexed()
    assert index.files_of(["web"]) == ["deploy/both.yaml", "deploy/one.yaml"]
    assert index.files_of(["jobs", "api"]) == ["deploy/both.yaml", "deploy/three.yaml"]
    assert index.files_of(["web", "nosuch"]) is None  # an app the index does not hold: the full read


def test_a_commit_of_tagtrails_own_keeps_the_index_and_what_it_replaced() -> None:
    index = indexed()
    new = TEXTS["deploy/one.yaml"].replace("v1", "v2")
    index.wrote("c1", {"deploy/one.yaml": new}, {"deploy/one.yaml": find("deploy/one.yaml", new, M)})
    assert index.head == "c1"
    assert index.known("deploy/one.yaml", new) == find("deploy/one.yaml", new, M)
    old = TEXTS["deploy/one.yaml"]
    assert index.known("deploy/one.yaml", old) == find("deploy/one.yaml", old, M)
    assert index.known("deploy/one.yaml", "image: something else\n") is None


def test_what_the_index_cannot_account_for_empties_it() -> None:
    for head, texts in ((None, {}), ("c1", {"deploy/four.yaml": "x: 1\n"})):  # tagtrail.yaml, a new file
        index = indexed()
        index.wrote(head, texts, {path: [] for path in texts})
        assert index.head is None
        assert index.files_of(["web"]) is None
