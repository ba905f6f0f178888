# tongban broker image: non-root, pinned base, nothing secret inside.
#
#   docker build -t tongban .
#   docker run --rm -v "$PWD/etc:/etc/tongban:ro" -v tongban-state:/var/lib/tongban -p 8080:8080 tongban
#
# The image holds the starter configuration (`tongban init /etc/tongban`); mount your own over it.
# Keys are never baked in: a SQLite journal makes its keys beside itself in /var/lib/tongban on
# first start (keep that volume, and back it up: docs/operations.md); a PostgreSQL journal takes
# TONGBAN_JOURNAL_KEY_FILE and TONGBAN_SEARCH_KEY from the runtime (compose.yaml).

# Exact tag of the base (bump it deliberately; the test of this file refuses floating tags).
FROM python:3.11.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml setup.py MANIFEST.in README.md ./
COPY federation federation
COPY adapters adapters
COPY replay replay
COPY partners.yaml ./
COPY mappings mappings
COPY partners partners
# Every wheel the broker needs, built or fetched here; the runtime stage installs offline.
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TONGBAN_JOURNAL=/var/lib/tongban/journal.sqlite
RUN groupadd --system --gid 10001 tongban \
 && useradd --system --uid 10001 --gid tongban --home-dir /var/lib/tongban --shell /usr/sbin/nologin tongban
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels tongban \
 && rm -rf /wheels \
 && tongban init /etc/tongban \
 && mkdir -p /var/lib/tongban/keys /var/lib/tongban/state \
 && chown -R tongban:tongban /var/lib/tongban \
 && chmod -R 0700 /var/lib/tongban
USER 10001:10001
WORKDIR /var/lib/tongban
VOLUME ["/var/lib/tongban"]
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/readyz', timeout=4)"]
ENTRYPOINT ["tongban"]
# 0.0.0.0 is refused until partners.yaml declares principals for every API (docs/security.md).
CMD ["serve", "--config", "/etc/tongban", "--host", "0.0.0.0", "--port", "8080"]
