#!/bin/sh
# docker-compose's backup service: backup.sh every day at BACKUP_AT (HH:MM, UTC; default
# 02:30), for ever. A failed run is logged and tried again at the next day's time (Kubernetes
# uses its CronJob instead: deploy/k8s/backup.yaml). BACKUP_ON_START=true runs one at start.
set -eu

here="$(cd "$(dirname "$0")" && pwd)"
at="${BACKUP_AT:-02:30}"
case "$at" in
    [0-2][0-9]:[0-5][0-9]) ;;
    *) echo "schedule.sh: BACKUP_AT must be HH:MM (UTC), not $at" >&2; exit 64 ;;
esac
# no leading zeros: sh arithmetic reads 08 as octal
h="$(echo "${at%%:*}" | sed 's/^0//')"
m="$(echo "${at##*:}" | sed 's/^0//')"
target=$(( ${h:-0} * 3600 + ${m:-0} * 60 ))

run() { "$here/backup.sh" || echo "schedule.sh: backup failed (exit $?), next at $at UTC" >&2; }

[ "${BACKUP_ON_START:-false}" = true ] && run
while :; do
    now="$(date -u +%H:%M:%S | awk -F: '{ print $1 * 3600 + $2 * 60 + $3 }')"
    wait=$(( (target - now + 86400) % 86400 ))
    [ "$wait" -eq 0 ] && wait=86400
    echo "schedule.sh: next backup in ${wait}s ($at UTC)" >&2
    sleep "$wait"
    run
done
