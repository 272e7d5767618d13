"""git through the git CLI: the facts tagtrail needs about a repository, with errors translated to GitError.

`GitRepo` (`_repo.py`) is a work tree and the questions asked of it one at a time (HEAD, a file, a push);
the questions asked of many commits at once, one git process for them all, are its `BatchReader`'s
(`_batch.py`), reached through the same `GitRepo` methods. `_process.py` is the one place git is started.
"""

from tagtrail.adapters.gitrepo._batch import CommitInfo
from tagtrail.adapters.gitrepo._repo import GitRepo, Push

__all__ = ["CommitInfo", "GitRepo", "Push"]
