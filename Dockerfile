# One Préau node (a school's or a district's) per container.
# Build: docker build -t preau .   Run: see docker-compose.yml and docs/operations.md.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Install from the source tree (not editable), then drop the sources.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY crdt ./crdt
COPY protocol ./protocol
COPY node ./node
COPY cli ./cli
COPY deploy/healthcheck.py /usr/local/bin/preau-healthcheck
RUN pip install . \
 && chmod 0755 /usr/local/bin/preau-healthcheck \
 && cd / && rm -rf /src

# The node never runs as root; its data (database, keys) lives on a volume only it can read.
RUN useradd --system --uid 10001 --user-group --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin preau \
 && mkdir -p /data && chown preau:preau /data && chmod 0700 /data

ENV PREAU_DATA_DIR=/data \
    PREAU_HOST=0.0.0.0 \
    PREAU_PORT=8080
VOLUME ["/data"]
EXPOSE 8080
USER preau
WORKDIR /data

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "/usr/local/bin/preau-healthcheck"]

ENTRYPOINT ["preau"]
CMD ["serve"]
