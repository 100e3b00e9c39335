# The hotline's image: one image for both `hotline web` (gunicorn) and `hotline worker`.
# docker-compose.yml runs it beside PostgreSQL; see README, "Running it in production".
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# pg_dump and pg_restore for `hotline db backup|restore` and the daily backup, of the same major version
# as docker-compose.yml's db (postgres:16): an older pg_dump refuses a newer server, and a newer one writes
# dumps an older server cannot restore. From PostgreSQL's own apt repository (postgresql-common ships its key).
# Pango, HarfBuzz, fontconfig and a font: WeasyPrint's system libraries, for the meeting pack's PDF (/summary.pdf).
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-common \
    && /usr/share/postgresql-common/pgdg/apt.postgresql.org.sh -y \
    && apt-get install -y --no-install-recommends postgresql-client-16 \
        libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libharfbuzz-subset0 libfontconfig1 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY . .
# Editable, so templates/ and static/ beside the package are found where create_app looks for them.
RUN pip install -e . \
    && useradd --system --home-dir /app --shell /usr/sbin/nologin hotline \
    && mkdir -p /app/instance/backups \
    && chown -R hotline /app/instance
USER hotline

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD python -c "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"
CMD ["hotline", "web", "--host", "0.0.0.0", "--port", "8000", "--workers", "3"]
