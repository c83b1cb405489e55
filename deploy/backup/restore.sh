#!/bin/sh
# Restores a backup made by backup.sh: every database (pg_restore --clean --if-exists, in one
# transaction each) and identity's files. Stop the services first (compose: `docker compose
# stop` every service but postgres; Kubernetes: scale the Deployments to 0), then start them
# again after it; deploy/README.md, "Backups and restore", gives the whole runbook.
#
#   restore.sh [STAMP]      the backup <TARGET>/<STAMP>/ (default: the newest complete one)
#
# The same settings as backup.sh (BACKUP_TARGET, BACKUP_S3_ENDPOINT, BACKUP_DATABASES,
# <NAME>_DATABASE_URL / POSTGRES_URL, IDENTITY_STORAGE_URL, PG_BIN), and
#   RESTORE_FILES=false     leave identity's files as they are (databases only)
#
# A database that exists is cleaned and restored into (objects of the backup dropped and made
# again; the role must own them: the superuser); one that does not is created as it was backed
# up (pg_restore --create: its owner, settings and grants). Identity's files: a folder is
# emptied and the tar extracted into it; a bucket is synced to the backup (`aws s3 sync
# --delete`: with versioning on, what it removes stays recoverable). The checksums are
# checked before anything is changed.
set -eu

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"

work="$(mktemp -d "${BACKUP_WORK_DIR:-${TMPDIR:-/tmp}}/voucher-restore.XXXXXX")"
trap 'rm -rf "$work"' EXIT INT TERM

stamp="${1:-$(newest_complete)}"
[ -n "$stamp" ] || fail "no complete backup in $(target_display)"
case "$stamp" in
    *[!0-9TZ]*|"") fail "not a backup name: $stamp (expected YYYYmmddTHHMMSSZ)" ;;
esac
src="$(get_backup "$stamp" "$work")"
[ -f "$src/COMPLETE" ] || fail "backup $stamp is unfinished (no COMPLETE): not restored"
(cd "$src" && sha256sum -c SHA256SUMS >/dev/null) || fail "backup $stamp: checksums differ"

for db in $(databases); do
    [ -f "$src/$db.dump" ] || fail "backup $stamp has no $db.dump"
done

log "restore $stamp from $(target_display)"
for db in $(databases); do
    url="$(database_url "$db")"
    if database_exists "$url"; then
        log "pg_restore $db (clean)"
        pg_restore --clean --if-exists --single-transaction --exit-on-error --no-password \
            --dbname="$url" "$src/$db.dump"
    else
        log "pg_restore $db (create)"
        pg_restore --create --exit-on-error --no-password \
            --dbname="$(maintenance_url "$url")" "$src/$db.dump"
    fi
done

if [ "${RESTORE_FILES:-true}" = true ]; then
    tar_to_files "$src/files.tar.gz" "$work/files"
fi
log "restore $stamp complete: start the services, then run voucher-invariants"
