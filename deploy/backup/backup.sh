#!/bin/sh
# A logical backup of the platform: every database (pg_dump -Fc, one file each) and identity's
# stored files (one tar), under a timestamped prefix of the backup target, then the retention
# rule. restore.sh (beside this file) is the reverse; deploy/README.md, "Backups and restore".
#
#   BACKUP_TARGET           where backups go: s3://BUCKET[/PREFIX] (the aws CLI; an
#                           S3-compatible store with BACKUP_S3_ENDPOINT) or a local folder
#                           (/backups, file:///backups: a volume)
#   BACKUP_S3_ENDPOINT      the store's URL when it is not AWS (http://minio.minio:9000)
#   BACKUP_DATABASES        the databases (default: the seven services' and the gateway's)
#   <NAME>_DATABASE_URL     where database NAME is (the services' own variable), else
#   POSTGRES_URL            the server (its database part replaced by NAME), else libpq's
#                           PGHOST/PGUSER/PGPASSWORD... The role must read every table: the
#                           superuser, or a role in pg_read_all_data.
#   IDENTITY_STORAGE_URL    identity's files (its own setting): file:///data/files, a path,
#                           or s3://BUCKET?endpoint=...&region=... (read with `aws s3 sync`)
#   BACKUP_RETENTION_DAYS   backups older than this are deleted (default 35) ...
#   BACKUP_KEEP_MIN         ... but never the newest BACKUP_KEEP_MIN complete ones (default 7)
#   BACKUP_WORK_DIR         scratch space for an S3 target (default $TMPDIR or /tmp)
#   PG_BIN                  a folder of pg_dump/pg_restore to use first (they must be at
#                           least the server's major version)
#
# A backup is <TARGET>/<YYYYmmddTHHMMSSZ>/ holding <name>.dump per database, files.tar.gz,
# SHA256SUMS, and COMPLETE written last: a backup without COMPLETE is unfinished (restore.sh
# refuses it; retention removes it once old). Exit status 0 only when every part was written.
set -eu

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"

stamp="$(date -u +%Y%m%dT%H%M%SZ)"
work="$(mktemp -d "${BACKUP_WORK_DIR:-${TMPDIR:-/tmp}}/voucher-backup.XXXXXX")"
trap 'rm -rf "$work"' EXIT INT TERM
out="$work/$stamp"
mkdir -p "$out"

log "backup $stamp to $(target_display)"
for db in $(databases); do
    url="$(database_url "$db")"
    log "pg_dump $db"
    # -Fc: compressed, restorable table by table, with owners and grants; one consistent
    # snapshot of this database (not across databases: see deploy/README.md).
    pg_dump --format=custom --compress=6 --no-password --file="$out/$db.dump" --dbname="$url"
done

files_to_tar "$work/files" "$out/files.tar.gz"

(cd "$out" && sha256sum -- * > SHA256SUMS)
date -u +%Y-%m-%dT%H:%M:%SZ > "$out/COMPLETE"
put_backup "$out" "$stamp"
log "backup $stamp complete"

apply_retention
