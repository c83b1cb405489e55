#!/bin/sh
# Entrypoint of the postgres container (docker-compose.yml), run before the image's own
# docker-entrypoint.sh: reads the compose secret /run/secrets/postgres (a file,
# deploy/env/postgres.secrets.env made by deploy/env/make-credentials.py, so the passwords
# are not in the container's configuration for `docker inspect` to show): the superuser's
# POSTGRES_PASSWORD, and the <DATABASE>_DB_PASSWORD of each service's role, which
# init/01-databases.sh reads when it initialises the data directory.
set -eu

secrets="${VOUCHER_SECRETS_FILE:-/run/secrets/postgres}"
if [ ! -r "$secrets" ]; then
    echo "postgres entrypoint: $secrets is missing (deploy/env/postgres.secrets.env)" >&2
    exit 64
fi
set -a
# shellcheck disable=SC1090
. "$secrets"
set +a
: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is not set (deploy/env/postgres.secrets.env)}"

exec docker-entrypoint.sh "$@"
