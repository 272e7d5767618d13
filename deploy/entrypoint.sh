#!/bin/sh
# The container's entrypoint: get the monorepo, then run tagtrail in it with the given arguments.
#
#   TAGTRAIL_REPO_URL     the monorepo to clone (https://… or git@…); required
#   TAGTRAIL_REPO_BRANCH  its deploy branch (default: the remote's default branch)
#   TAGTRAIL_CONFIG       tagtrail.yaml's path inside it (default: tagtrail.yaml)
#   TAGTRAIL_HOME         where the clone lives (default: /var/lib/tagtrail; a volume in Kubernetes)
#   TAGTRAIL_GIT_TOKEN    a token for https remotes (GitHub: a fine-grained token with contents: write)
#   TAGTRAIL_GIT_SSH_KEY  the path of an SSH deploy key for git@ remotes (with TAGTRAIL_GIT_KNOWN_HOSTS)
#
# Credentials are read from the environment or files when git asks, never written into the clone's
# config or a URL. A clone kept from an earlier start is fetched, and a clean one is fast-forwarded.
set -eu

home=${TAGTRAIL_HOME:-/var/lib/tagtrail}
repo=$home/repo
url=${TAGTRAIL_REPO_URL:?set TAGTRAIL_REPO_URL to the monorepo tagtrail deploys from}

if [ -n "${TAGTRAIL_GIT_TOKEN:-}" ]; then
  # git asks this helper for the password; the token stays in the environment (single quotes on purpose)
  # shellcheck disable=SC2016
  git config --global credential.helper \
    '!f() { test "$1" = get && echo username=x-access-token && echo "password=${TAGTRAIL_GIT_TOKEN}"; }; f'
fi
if [ -n "${TAGTRAIL_GIT_SSH_KEY:-}" ]; then
  # a mounted Secret is readable by its group; ssh wants a key only its owner can read: copy it
  key=$HOME/.ssh/tagtrail-deploy-key
  mkdir -p "$HOME/.ssh"
  (umask 077 && cat "$TAGTRAIL_GIT_SSH_KEY" >"$key")
  known=${TAGTRAIL_GIT_KNOWN_HOSTS:-/etc/tagtrail/git/known_hosts}
  export GIT_SSH_COMMAND="ssh -i $key -o IdentitiesOnly=yes -o UserKnownHostsFile=$known -o StrictHostKeyChecking=yes"
fi
git config --global user.name >/dev/null 2>&1 || git config --global user.name tagtrail
git config --global user.email >/dev/null 2>&1 || git config --global user.email tagtrail@localhost

if [ -d "$repo/.git" ]; then
  git -C "$repo" remote set-url origin "$url"
  git -C "$repo" fetch --quiet origin
  git -C "$repo" merge --quiet --ff-only '@{upstream}' 2>/dev/null \
    || echo "tagtrail-entrypoint: $repo is not a fast-forward of its upstream; using it as it is" >&2
else
  mkdir -p "$home"
  if [ -n "${TAGTRAIL_REPO_BRANCH:-}" ]; then
    git clone --quiet --branch "$TAGTRAIL_REPO_BRANCH" "$url" "$repo"
  else
    git clone --quiet "$url" "$repo"
  fi
fi

config=$repo/${TAGTRAIL_CONFIG:-tagtrail.yaml}
if [ ! -f "$config" ]; then
  echo "tagtrail-entrypoint: no ${TAGTRAIL_CONFIG:-tagtrail.yaml} in $url; set TAGTRAIL_CONFIG to its path" >&2
  exit 2
fi
cd "$(dirname "$config")"
exec tagtrail -c "$config" "$@"
