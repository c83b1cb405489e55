# Shared by backup.sh and restore.sh (POSIX sh, sourced): where the databases, the files and
# the backups are. Tools: pg_dump, pg_restore, psql, tar, gzip, sha256sum, and the aws CLI
# for an s3:// target or files' bucket (deploy/backup/Dockerfile has them all).

DEFAULT_DATABASES="identity quota catalog orders contracts payments demands gateway"

if [ -n "${PG_BIN:-}" ]; then
    PATH="$PG_BIN:$PATH"
    export PATH
fi
# aws writes its caches under HOME: a read-only root file system has none.
HOME="${HOME:-/tmp}"
[ -w "$HOME" ] || HOME="${TMPDIR:-/tmp}"
export HOME

# docker-compose: the superuser's password from the postgres secret file (the same file the
# postgres container reads), never from the environment.
secrets_file="${BACKUP_SECRETS_FILE:-/run/secrets/postgres}"
if [ -z "${PGPASSWORD:-}" ] && [ -r "$secrets_file" ]; then
    PGPASSWORD="$(sed -n 's/^POSTGRES_PASSWORD=//p' "$secrets_file" | tail -n 1)"
    export PGPASSWORD
fi

log() { printf '%s voucher-backup: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
fail() { log "error: $*"; exit 1; }

databases() { echo "${BACKUP_DATABASES:-$DEFAULT_DATABASES}"; }

# postgresql+asyncpg://u:p@h:5432/db -> postgresql://u:p@h:5432/db (libpq's form).
libpq_url() { printf '%s\n' "$1" | sed -e 's#^postgresql+[a-z]*://#postgresql://#' -e 's#^postgres://#postgresql://#'; }

# The URL of database NAME: <NAME>_DATABASE_URL, else POSTGRES_URL with NAME as its database,
# else libpq's environment (PGHOST, PGUSER, ...) with dbname=NAME.
database_url() {
    var="$(printf '%s' "$1" | tr 'a-z' 'A-Z' | tr -c 'A-Z0-9' '_')_DATABASE_URL"
    given="$(printenv "$var" || true)"
    if [ -n "$given" ]; then
        libpq_url "$given"
    elif [ -n "${POSTGRES_URL:-}" ]; then
        with_database "$(libpq_url "$POSTGRES_URL")" "$1"
    else
        echo "dbname=$1"
    fi
}

# URL with its database part replaced (the query kept).
with_database() {
    case "$1" in
        postgresql://*) ;;
        *) echo "$1" | sed "s/dbname=[^ ]*/dbname=$2/"; return ;;
    esac
    rest="${1#postgresql://}"
    authority="${rest%%[/?]*}"
    query=""
    case "$rest" in *\?*) query="?${rest#*\?}" ;; esac
    echo "postgresql://$authority/$2$query"
}

url_database() {
    case "$1" in
        postgresql://*) ;;
        *) echo "$1" | sed -n 's/.*dbname=\([^ ]*\).*/\1/p'; return ;;
    esac
    rest="${1#postgresql://}"
    rest="${rest%%\?*}"
    case "$rest" in */*) echo "${rest#*/}" ;; *) echo "" ;; esac
}

maintenance_url() { with_database "$1" postgres; }

database_exists() {
    name="$(url_database "$1")"
    found="$(printf '%s\n' "SELECT 1 FROM pg_database WHERE datname = :'name';" |
        psql --no-psqlrc --no-password -X -A -t -q -v ON_ERROR_STOP=1 -v name="$name" \
            --dbname="$(maintenance_url "$1")")" || fail "cannot reach the server of $name"
    [ "$found" = 1 ]
}

# --- the target: s3://bucket/prefix or a local folder --------------------------------------

target() {
    t="${BACKUP_TARGET:?BACKUP_TARGET is not set (s3://bucket/prefix or a folder)}"
    t="${t#file://}"
    echo "${t%/}"
}

target_display() { target; }

is_s3_target() { case "$(target)" in s3://*) return 0 ;; *) return 1 ;; esac; }

s3() {
    if [ -n "${BACKUP_S3_ENDPOINT:-}" ]; then
        aws --endpoint-url "$BACKUP_S3_ENDPOINT" "$@"
    else
        aws "$@"
    fi
}

# Every backup's name (YYYYmmddTHHMMSSZ), oldest first.
list_backups() {
    if is_s3_target; then
        s3 s3 ls "$(target)/" 2>/dev/null | awk '$1 == "PRE" { sub("/$", "", $2); print $2 }' |
            grep -E '^[0-9]{8}T[0-9]{6}Z$' | sort || true
    else
        [ -d "$(target)" ] || return 0
        ls -1 "$(target)" | grep -E '^[0-9]{8}T[0-9]{6}Z$' | sort || true
    fi
}

is_complete() {
    if is_s3_target; then
        s3 s3 ls "$(target)/$1/COMPLETE" >/dev/null 2>&1
    else
        [ -f "$(target)/$1/COMPLETE" ]
    fi
}

newest_complete() {
    for stamp in $(list_backups | sort -r); do
        if is_complete "$stamp"; then
            echo "$stamp"
            return
        fi
    done
}

# Upload (or move into place) the finished folder; COMPLETE goes last.
put_backup() {
    if is_s3_target; then
        for f in "$1"/*; do
            [ "$(basename "$f")" = COMPLETE ] && continue
            s3 s3 cp --only-show-errors "$f" "$(target)/$2/$(basename "$f")"
        done
        s3 s3 cp --only-show-errors "$1/COMPLETE" "$(target)/$2/COMPLETE"
    else
        mkdir -p "$(target)"
        partial="$(target)/.$2.partial"
        rm -rf "$partial"
        cp -R "$1" "$partial"
        mv "$partial" "$(target)/$2"
    fi
}

# The folder holding backup STAMP (downloaded into WORK for an S3 target).
get_backup() {
    if is_s3_target; then
        s3 s3 cp --only-show-errors --recursive "$(target)/$1/" "$2/$1/" >&2
        echo "$2/$1"
    else
        [ -d "$(target)/$1" ] || fail "no backup $1 in $(target)"
        echo "$(target)/$1"
    fi
}

remove_backup() {
    log "retention: removing $1"
    if is_s3_target; then
        s3 s3 rm --only-show-errors --recursive "$(target)/$1/"
    else
        rm -rf "$(target)/$1"
    fi
}

# Backups older than BACKUP_RETENTION_DAYS go, but the newest BACKUP_KEEP_MIN complete ones
# stay whatever their age (a job failing for weeks never leaves nothing to restore).
apply_retention() {
    days="${BACKUP_RETENTION_DAYS:-35}"
    keep="${BACKUP_KEEP_MIN:-7}"
    cutoff="$(date -u -d "@$(($(date -u +%s) - days * 86400))" +%Y%m%dT%H%M%SZ)"
    kept=0
    for stamp in $(list_backups | sort -r); do
        if [ "$kept" -lt "$keep" ] && is_complete "$stamp"; then
            kept=$((kept + 1))
            continue
        fi
        # names sort as times: older than the cutoff
        if [ "$(printf '%s\n%s\n' "$stamp" "$cutoff" | sort | head -n 1)" = "$stamp" ] &&
            [ "$stamp" != "$cutoff" ]; then
            remove_backup "$stamp"
        fi
    done
}

# --- identity's files: IDENTITY_STORAGE_URL ----------------------------------------------

storage_url() { echo "${IDENTITY_STORAGE_URL:?IDENTITY_STORAGE_URL is not set (identity's files)}"; }

# s3://bucket?endpoint=...&region=... -> the value of one query parameter
storage_param() {
    case "$(storage_url)" in *\?*) ;; *) return 0 ;; esac
    printf '%s\n' "${1}" | sed -n "s/.*[?&]$2=\([^&]*\).*/\1/p"
}

files_aws() {
    url="$(storage_url)"
    endpoint="$(storage_param "$url" endpoint)"
    region="$(storage_param "$url" region)"
    set -- ${endpoint:+--endpoint-url "$endpoint"} ${region:+--region "$region"} "$@"
    aws "$@"
}

files_bucket() {
    b="${1#s3://}"
    echo "s3://${b%%\?*}"
}

local_files_dir() {
    url="$(storage_url)"
    url="${url#file://}"
    url="${url#localhost}"
    echo "$url"
}

files_to_tar() {
    url="$(storage_url)"
    case "$url" in
        s3://*)
            log "aws s3 sync $(files_bucket "$url")"
            mkdir -p "$1"
            files_aws s3 sync --only-show-errors "$(files_bucket "$url")" "$1"
            tar -C "$1" -czf "$2" .
            ;;
        *)
            dir="$(local_files_dir)"
            log "tar $dir"
            if [ -d "$dir" ]; then
                tar -C "$dir" -czf "$2" .
            else
                mkdir -p "$1" && tar -C "$1" -czf "$2" .
            fi
            ;;
    esac
}

tar_to_files() {
    url="$(storage_url)"
    case "$url" in
        s3://*)
            mkdir -p "$2"
            tar -C "$2" -xzf "$1"
            log "aws s3 sync --delete to $(files_bucket "$url")"
            files_aws s3 sync --only-show-errors --delete "$2" "$(files_bucket "$url")"
            ;;
        *)
            dir="$(local_files_dir)"
            log "files into $dir"
            mkdir -p "$dir"
            find "$dir" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
            tar -C "$dir" -xzf "$1"
            ;;
    esac
}
