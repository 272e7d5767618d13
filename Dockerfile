# tagtrail itself: `tagtrail serve` in a slim, non-root image with git.
#   docker build -t registry.lan:5000/tagtrail:0.1.0 .      (or: buildah bud -t … .)
# The entrypoint clones the monorepo named by TAGTRAIL_REPO_URL into /var/lib/tagtrail/repo (a volume),
# then runs tagtrail there; see deploy/kubernetes/ and the README's "Run it in your cluster".

# BASE: any Debian bookworm image with Python 3.11 and pip; the tests build on a debootstrapped one
# (tests/integration/test_image.py), since Docker Hub is out of their reach.
ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS wheels
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends git openssh-client ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 10001 --user-group --home-dir /home/tagtrail --create-home --shell /usr/sbin/nologin tagtrail \
 && install -d -o 10001 -g 10001 /var/lib/tagtrail
COPY --from=wheels /wheels /wheels
RUN pip install --no-cache-dir --no-compile /wheels/*.whl && rm -rf /wheels
COPY --chmod=0755 deploy/entrypoint.sh /usr/local/bin/tagtrail-entrypoint
ENV HOME=/home/tagtrail \
    XDG_STATE_HOME=/var/lib/tagtrail/state \
    XDG_CACHE_HOME=/var/lib/tagtrail/cache \
    TAGTRAIL_HOME=/var/lib/tagtrail \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
WORKDIR /var/lib/tagtrail
EXPOSE 8080
# tini forwards SIGTERM to tagtrail, which finishes the push in progress and exits 0
ENTRYPOINT ["tini", "--", "tagtrail-entrypoint"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080", "--secure-cookies"]
