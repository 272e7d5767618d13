"""Which deploy files hold each app's references, kept from the GitOps target's last full read (issue 25).

A webhook hint names one app (or a few). With this index the target reads only the files holding their
references, decides only for them and writes only those files, so a push costs the same at 8 apps and at
500. The index is trusted only when it provably describes what the deploy branch holds now: the commit it
was read at (or made by tagtrail since) is the head, or one whose difference from the head touches neither
tagtrail.yaml nor any path deploy.git.files names; tagtrail.yaml reads as it did; and every file read is there
with the text indexed. Anything else (no full read yet, the branch moved under a deploy file, a new file the
globs match, one vanished, the config changed) is answered by the full read, which rebuilds the index.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from tagtrail.adapters.refs import Reference
from tagtrail.config.globs import glob_match, is_glob
from tagtrail.errors import GitError
from tagtrail.targets.files import Found
from tagtrail.targets.workcopy import WorkingCopy


@dataclass(frozen=True)
class Slice:
    """What the index answers for some apps: the files holding their references, as read now, with the
    references found in them when they were indexed, and tagtrail.yaml's text."""

    texts: dict[str, str | None]
    found: dict[str, Sequence[Reference]]
    config_text: str | None


@dataclass
class DeployIndex:
    """One GitOps target's index. `last_read`: the deploy files its last read read (an observable for
    tests and logs: a hint's read names only its apps' files)."""

    entries: Sequence[str]  # deploy.git.files as written: paths and globs
    head: str | None = None
    config_text: str | None = None
    texts: dict[str, str] = field(default_factory=dict)  # every deploy file, in the order they are read
    found: dict[str, Sequence[Reference]] = field(default_factory=dict)
    # the texts tagtrail's last commit replaced, with their references (its parent's)
    before: dict[str, tuple[str, Sequence[Reference]]] = field(default_factory=dict)
    last_read: tuple[str, ...] = ()

    def remember(
        self, copy: WorkingCopy, config_text: str | None, texts: Mapping[str, str | None], found: Found
    ) -> None:
        """A full read of `copy`, at the commit checked out there."""
        self.last_read = tuple(texts)
        root = copy.repo.root.resolve()
        try:
            head = copy.repo.head_sha()
        except GitError:  # no commit yet: nothing to vouch for
            self.forget()
            return
        if any((root / path).resolve() != root / path for path in texts):
            self.forget()  # a link: a change to the file it names is not a change git shows at its path
            return
        self.head, self.config_text = head, config_text
        self.texts = {path: text for path, text in texts.items() if text is not None}
        self.found = {path: found.get(path, ()) for path in self.texts}

    def wrote(self, head: str | None, texts: Mapping[str, str], found: Found) -> None:
        """tagtrail committed `head`, changing `texts` (whose references are `found`) and nothing else
        (None: it changed tagtrail.yaml too, or made no commit: the next read is a full one)."""
        if head is None or self.head is None or not set(texts) <= set(self.texts):
            self.forget()
            return
        self.head = head
        self.before = {path: (self.texts[path], self.found[path]) for path in texts}
        self.texts.update(texts)
        self.found.update({path: found[path] for path in texts})

    def known(self, path: str, text: str) -> Sequence[Reference] | None:
        """The references of `text` at `path` where the index holds that text, now or before tagtrail's
        last commit (the history after a deploy reads both versions: not parsed again)."""
        if self.texts.get(path) == text:
            return self.found[path]
        before = self.before.get(path)
        return before[1] if before is not None and before[0] == text else None

    def forget(self) -> None:
        self.head = None
        self.texts, self.found, self.before = {}, {}, {}

    def files_of(self, apps: Collection[str]) -> list[str] | None:
        """The files holding the references of `apps`, in read order; None when an app has none indexed."""
        holding = [path for path, refs in self.found.items() if any(r.app in apps for r in refs)]
        named = {r.app for path in holding for r in self.found[path]}
        return holding if set(apps) <= named else None

    def peek(self, apps: Collection[str]) -> tuple[dict[str, Sequence[Reference]], str | None] | None:
        """The references of the files holding `apps`, and tagtrail.yaml's text, as indexed (no git, no file
        read): what `read` answers while nothing changed since; None where the index holds no full read."""
        paths = self.files_of(apps) if self.head is not None else None
        return ({path: self.found[path] for path in paths}, self.config_text) if paths is not None else None

    def read(self, copy: WorkingCopy, apps: Collection[str], config_rel: str | None) -> Slice | None:
        """The files of `apps` in `copy`, read, when the index still describes them; else None (blocking)."""
        paths = self.files_of(apps) if self.head is not None else None
        if paths is None or self.head is None:
            return None
        try:  # one git process: commits since (a monorepo's own) that touch no deploy file change nothing
            moved = copy.repo.changed_paths(self.head, "HEAD")
        except GitError:  # the indexed commit is gone (a force-push, a fresh clone)
            return None
        if any(self._holds(path, config_rel) for path in moved):
            return None
        config_text = copy.read(config_rel) if config_rel else None
        texts = {path: copy.read(path) for path in paths}
        if config_text != self.config_text or any(texts[p] != self.texts[p] for p in paths):
            return None  # changed outside a commit (an in-place checkout's tagtrail.yaml)
        self.last_read = tuple(paths)
        return Slice(texts, {path: self.found[path] for path in paths}, config_text)

    def _holds(self, path: str, config_rel: str | None) -> bool:
        """Whether a change to `path` may change what the index says: tagtrail.yaml, or a deploy file."""
        return (
            path == config_rel
            or path in self.texts
            or any(glob_match(e, path) if is_glob(e) else e == path for e in self.entries)
        )
