# One Préau node (a school's or a district's) per container.
#
# Where an image registry and the package index are reachable:
#     docker build -t preau .
# Without them (an offline network, a CI machine): deploy/docker/build-image makes a
# Debian base with mmdebstrap and a wheelhouse on the host, then builds this file with
#     --build-arg BASE=preau-base:bookworm-amd64 --build-arg WHEELS=deploy/docker/wheelhouse/amd64
# Run: see docker-compose.yml and docs/operations.md ("Docker").
ARG BASE=python:3.12-slim

# Installs Préau into a virtual environment, /opt/preau, copied alone into the image below
# (so neither the sources nor the wheels stay in a layer of the image).
FROM ${BASE} AS install
ARG WHEELS=deploy/docker/wheelhouse
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY crdt ./crdt
COPY protocol ./protocol
COPY node ./node
COPY cli ./cli
COPY ${WHEELS}/ /wheels/
# With a wheelhouse (it holds preau's own wheel): from it alone, never the index.
# Without one: from the sources, dependencies from the package index. Nothing needs
# setuptools at run time (the venv brings it on Python 3.11); pip stays, sqlite-utils declares it.
RUN python3 -m venv /opt/preau \
 && if ls /wheels/preau-*.whl >/dev/null 2>&1; then \
        /opt/preau/bin/pip install --no-index --find-links /wheels preau; \
    else \
        /opt/preau/bin/pip install /src; \
    fi \
 && /opt/preau/bin/pip uninstall --quiet --yes setuptools \
 && /opt/preau/bin/preau --version

FROM ${BASE}
COPY --from=install /opt/preau /opt/preau
COPY deploy/healthcheck.py /usr/local/bin/preau-healthcheck

# The node never runs as root; its data (database, keys) lives on a volume only it can read.
RUN useradd --system --uid 10001 --user-group --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin preau \
 && mkdir -p /data && chown preau:preau /data && chmod 0700 /data \
 && chmod 0755 /usr/local/bin/preau-healthcheck

ENV PATH=/opt/preau/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PREAU_DATA_DIR=/data \
    PREAU_HOST=0.0.0.0 \
    PREAU_PORT=8080
VOLUME ["/data"]
EXPOSE 8080
USER preau
WORKDIR /data

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["/opt/preau/bin/python", "/usr/local/bin/preau-healthcheck"]

ENTRYPOINT ["preau"]
CMD ["serve"]
