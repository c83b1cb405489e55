#!/bin/sh
# Runs once, when the postgres container initialises an empty data directory (the official
# image runs every file of /docker-entrypoint-initdb.d in order, as the postgres user), as
# the superuser POSTGRES_USER. Least privilege: each process of the suite that has a database
# gets a login role of the same name that owns that database alone, and nobody else may
# connect to it (CONNECT and TEMP revoked from PUBLIC). The superuser's password stays in
# the postgres container; a role's password comes from <NAME>_DB_PASSWORD
# (deploy/env/postgres.secrets.env, made by deploy/env/make-credentials.py together with the
# URL that service connects with).
#
# Idempotent, and safe to run again on a deployment made before the roles existed (its
# databases and tables belong to the superuser): a role that exists gets its password set
# again, a database that exists is given to its role with everything in it. A service added
# later must be added to this list; on a deployment whose data directory already exists run
# it by hand:
#   docker compose exec postgres sh /docker-entrypoint-initdb.d/01-databases.sh
set -eu

DATABASES="identity quota catalog orders contracts payments demands gateway"
# Tests run the script against a server of their own, on names of their own.
DATABASES="${VOUCHER_DATABASES:-$DATABASES}"
ROLE_PREFIX="${VOUCHER_ROLE_PREFIX:-}"
# voucher-invariants (deploy/monitoring/invariants-cronjob.yaml) reads these databases and
# writes nothing: a role of its own, made when INVARIANTS_DB_PASSWORD is given
# (make-credentials.py writes it, and deploy/env/invariants.credentials.env with the URLs).
READER_DATABASES="quota orders contracts payments"
READER_DATABASES="${VOUCHER_READER_DATABASES:-$READER_DATABASES}"
READER_ROLE="${VOUCHER_READER_ROLE:-invariants}"

for db in $DATABASES; do
    role="$ROLE_PREFIX$db"
    var="$(echo "$db" | tr 'a-z' 'A-Z' | tr -c 'A-Z0-9\n' '_')_DB_PASSWORD"
    password="$(printenv "$var" || true)"
    if [ -z "$password" ]; then
        echo "01-databases.sh: $var is not set (deploy/env/postgres.secrets.env)" >&2
        exit 64
    fi
    psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet --username "$POSTGRES_USER" \
        --dbname "${POSTGRES_DB:-$POSTGRES_USER}" \
        -v db="$db" -v role="$role" -v password="$password" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'role')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
-- No superuser, no CREATEDB / CREATEROLE, a bounded number of connections is set elsewhere.
SELECT format('ALTER ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD %L',
              :'role', :'password') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
SELECT format('ALTER DATABASE %I OWNER TO %I', :'db', :'role') \gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'db') \gexec
SELECT format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO %I', :'db', :'role') \gexec
SQL
    # Inside the database: what the superuser made there (before the roles existed) becomes
    # the role's, so its migrations can alter it.
    psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet --username "$POSTGRES_USER" --dbname "$db" \
        -v role="$role" <<'SQL'
SELECT set_config('voucher.role', :'role', false);
DO $$
DECLARE
    target text := current_setting('voucher.role');
    item record;
BEGIN
    FOR item IN
        SELECT n.nspname FROM pg_namespace n
        WHERE n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema'
          AND pg_get_userbyid(n.nspowner) <> target
          AND n.nspowner <> (SELECT oid FROM pg_roles WHERE rolname = 'pg_database_owner')
    LOOP
        EXECUTE format('ALTER SCHEMA %I OWNER TO %I', item.nspname, target);
    END LOOP;
    -- Tables (their sequences and indexes follow), views, lone sequences.
    FOR item IN
        SELECT c.oid::regclass AS name, c.relkind FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema'
          AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
          AND pg_get_userbyid(c.relowner) <> target
          AND NOT (c.relkind = 'S' AND EXISTS (
              SELECT FROM pg_depend d WHERE d.objid = c.oid AND d.classid = 'pg_class'::regclass
                AND d.deptype IN ('a', 'i')))
    LOOP
        EXECUTE format('ALTER %s %s OWNER TO %I',
            CASE item.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
                 WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END,
            item.name, target);
    END LOOP;
    -- Types of their own (enums, domains), not the row types of tables.
    FOR item IN
        SELECT t.oid::regtype AS name, t.typtype FROM pg_type t
        JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema'
          AND t.typtype IN ('e', 'd', 'r', 'c') AND t.typelem = 0
          AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
          AND pg_get_userbyid(t.typowner) <> target
          AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = t.oid AND d.deptype = 'e')
    LOOP
        EXECUTE format('ALTER %s %s OWNER TO %I',
            CASE item.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, item.name, target);
    END LOOP;
    FOR item IN
        SELECT p.oid::regprocedure AS name, p.prokind FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema'
          AND pg_get_userbyid(p.proowner) <> target
          AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
    LOOP
        EXECUTE format('ALTER %s %s OWNER TO %I',
            CASE item.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END,
            item.name, target);
    END LOOP;
END
$$;
SQL
done

if [ -n "${INVARIANTS_DB_PASSWORD:-}" ]; then
    # Reads every table (pg_read_all_data, PostgreSQL 14+) of the databases it may connect to,
    # those of READER_DATABASES alone; every transaction it opens is read-only.
    psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet --username "$POSTGRES_USER" \
        --dbname "${POSTGRES_DB:-$POSTGRES_USER}" \
        -v role="$READER_ROLE" -v password="$INVARIANTS_DB_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'role')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('ALTER ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD %L',
              :'role', :'password') \gexec
SELECT format('ALTER ROLE %I SET default_transaction_read_only = on', :'role') \gexec
SELECT format('GRANT pg_read_all_data TO %I', :'role') \gexec
SQL
    for db in $READER_DATABASES; do
        psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet --username "$POSTGRES_USER" \
            --dbname "${POSTGRES_DB:-$POSTGRES_USER}" -v db="$db" -v role="$READER_ROLE" <<'SQL'
SELECT format('GRANT CONNECT ON DATABASE %I TO %I', :'db', :'role') \gexec
SQL
    done
fi
