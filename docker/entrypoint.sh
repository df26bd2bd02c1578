#!/bin/sh
# Container entry point for the web, worker and beat services.
# Checks the settings that must come from .env, then (web only, STONKS_RUN_SETUP=1) migrates
# the database, syncs plugins and collects static files before exec'ing the command.
set -eu

# docker-compose passes unset .env values as empty strings; treat those as "not set".
if [ -z "${PLUGINS_SECRET_KEY:-}" ]; then
    unset PLUGINS_SECRET_KEY
fi

case "${SECRET_KEY:-}" in
    "" | change-me*)
        echo "error: SECRET_KEY is not set; copy .env.example to .env and set SECRET_KEY to a long random value" >&2
        exit 1
        ;;
esac
case "${PLUGINS_SECRET_KEY:-}" in
    change-me*)
        echo "error: PLUGINS_SECRET_KEY still holds the .env.example placeholder; generate a Fernet key (see .env.example)" >&2
        exit 1
        ;;
esac

# Django's deployment checks, ours included: the repository's default SECRET_KEY, or secrets
# encrypted with a key derived from it, must not reach a deployment (stonks_plugins.E001-E004).
python manage.py check --deploy --fail-level ERROR

if [ "${STONKS_RUN_SETUP:-0}" = "1" ]; then
    echo "entrypoint: manage.py migrate"
    python manage.py migrate --noinput

    echo "entrypoint: manage.py plugins sync"
    # One bad plugin must not keep the site down: exit 1 (some plugin failed) is reported,
    # not fatal; anything else is.
    rc=0
    python manage.py plugins sync || rc=$?
    if [ "$rc" -eq 1 ]; then
        echo "entrypoint: warning: plugins sync reported failing plugins; see 'manage.py plugins list'" >&2
    elif [ "$rc" -ne 0 ]; then
        exit "$rc"
    fi

    echo "entrypoint: manage.py collectstatic"
    python manage.py collectstatic --noinput --verbosity 0
fi

# /metrics' multiprocess folder is shared by the web and worker containers: the files of
# this container's processes from before a restart are not summed any more.
if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
    python -c 'from stonks_plugins.monitoring.multiproc import sweep_dead; sweep_dead()'
fi

exec "$@"
