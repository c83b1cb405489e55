#!/bin/sh
# Runs once, when the postgres container initialises an empty data directory (the official
# image runs every file of /docker-entrypoint-initdb.d in order, as the postgres user).
# Creates one database per process of the suite, owned by the application role
# POSTGRES_USER: every service owns its own database and never reads another's tables.
# Idempotent: a database that exists is left alone.
#
# A service added later must be added to this list. On a deployment whose data directory
# already exists this script does not run again: the services create their own database at
# start when it is missing (common.db.ensure_database), or run it by hand:
#   docker compose exec postgres sh /docker-entrypoint-initdb.d/01-databases.sh
set -e

DATABASES="identity quota catalog orders contracts payments demands gateway"

for db in $DATABASES; do
    psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "${POSTGRES_DB:-$POSTGRES_USER}" \
        -v db="$db" -v owner="$POSTGRES_USER" <<'SQL'
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'owner')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
SQL
done
