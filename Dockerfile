# Stonks Overwatch: web (gunicorn), Celery worker and beat all run from this image.
FROM python:3.11-slim

# PYTHONPATH=/app: import the project from /app, not from site-packages, because settings
# resolve templates/, static/ and the plugin directories (PLUGIN_DIRS=plugins) relative to
# the source tree.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=stonks_overwatch.settings \
    PYTHONPATH=/app

WORKDIR /app

RUN groupadd --system --gid 1000 stonks \
    && useradd --system --uid 1000 --gid stonks --home-dir /app --shell /usr/sbin/nologin stonks

# Install the distribution (and so its dependencies) first, for better layer caching.
COPY pyproject.toml README.md ./
COPY stonks_overwatch ./stonks_overwatch
COPY stonks_plugins ./stonks_plugins
RUN pip install .

COPY manage.py gunicorn.conf.py ./
COPY templates ./templates
# The host pages' translations (compiled .mo files are committed: no gettext needed here).
COPY locale ./locale
COPY static ./static
COPY plugins ./plugins
COPY docker/entrypoint.sh /usr/local/bin/stonks-entrypoint

# PYTHONDONTWRITEBYTECODE keeps the running containers from writing into /app, and /app is
# what PYTHONPATH imports (not site-packages, which pip compiled): without this, every web
# and Celery worker and every process-isolated plugin's child compiled the project's sources
# at each start (a plugin's child started in 0.31 s of CPU instead of 0.17 s).
RUN python -m compileall -q /app/stonks_overwatch /app/stonks_plugins /app/plugins

# /var/lib/stonks-prometheus: /metrics' multiprocess folder (PROMETHEUS_MULTIPROC_DIR in
# docker-compose.yml), owned by the user the containers run as, so a volume mounted there is too.
RUN chmod 0755 /usr/local/bin/stonks-entrypoint \
    && mkdir -p /app/staticfiles /var/lib/stonks-prometheus \
    && chown stonks:stonks /app/staticfiles /var/lib/stonks-prometheus

USER stonks

EXPOSE 8000

ENTRYPOINT ["stonks-entrypoint"]
CMD ["gunicorn", "stonks_overwatch.wsgi:application", "-b", "0.0.0.0:8000", "-w", "2"]
