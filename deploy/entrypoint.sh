#!/bin/sh
# Starts one process of the suite in its container (deploy/Dockerfile's CMD).
#   SERVICE  gateway | identity | quota | catalog | orders | contracts | payments | demands
#   PORT     the port to listen on (baked into the image from the build argument PORT)
# Extra arguments are passed on to uvicorn, e.g. `voucher-entrypoint --workers 2`.
# uvicorn replaces this shell (exec), so it is PID 1 and gets SIGTERM on `docker stop`.
# --proxy-headers trusts X-Forwarded-For/-Proto only from FORWARDED_ALLOW_IPS (uvicorn's
# own variable; default 127.0.0.1): set it to the reverse proxy's address if there is one.
set -eu

: "${SERVICE:?SERVICE is not set (gateway, identity, quota, catalog, orders, contracts, payments, demands)}"
: "${PORT:?PORT is not set}"

case "$SERVICE" in
    gateway | identity | quota | catalog | orders | contracts | payments | demands)
        package="$SERVICE"
        ;;
    *)
        echo "voucher-entrypoint: unknown SERVICE '$SERVICE'" >&2
        exit 64
        ;;
esac

exec uvicorn --factory "${package}.main:create_app" \
    --host 0.0.0.0 --port "$PORT" --proxy-headers "$@"
