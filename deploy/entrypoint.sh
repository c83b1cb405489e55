#!/bin/sh
# Starts one process of the suite in its container (deploy/Dockerfile's CMD).
#   SERVICE  gateway | identity | quota | catalog | orders | contracts | payments | demands | web
#   PORT     the port to listen on (baked into the image from the build argument PORT)
# Extra arguments are passed on to uvicorn, e.g. `voucher-entrypoint --workers 2`.
# uvicorn replaces this shell (exec), so it is PID 1 and gets SIGTERM on `docker stop`.
# --no-proxy-headers: uvicorn never takes the client address from X-Forwarded-For (its own
# default trusts any loopback client). The gateway, identity and the portal read that header
# themselves, from the number of proxies configured as trusted
# (GATEWAY_/IDENTITY_/WEB_TRUSTED_PROXY_HOPS).
# --no-server-header: no "server: uvicorn" banner.
# --http common.serving:ProblemHttpToolsProtocol: uvicorn's httptools protocol, but a request
#   too large or malformed to parse (a 100 KB request line) is answered as an RFC 9457
#   problem (414, 431, 400) instead of plain text.
# --timeout-graceful-shutdown: open event streams (notifications) never end by themselves; a
#   stop waits 10 s for them, then closes them (browsers reconnect with Last-Event-ID).
set -eu

: "${SERVICE:?SERVICE is not set (gateway, identity, quota, catalog, orders, contracts, payments, demands, web)}"
: "${PORT:?PORT is not set}"

case "$SERVICE" in
    gateway | identity | quota | catalog | orders | contracts | payments | demands | web)
        package="$SERVICE"
        ;;
    *)
        echo "voucher-entrypoint: unknown SERVICE '$SERVICE'" >&2
        exit 64
        ;;
esac

exec uvicorn --factory "${package}.main:create_app" \
    --host 0.0.0.0 --port "$PORT" --no-proxy-headers --no-server-header \
    --http common.serving:ProblemHttpToolsProtocol \
    --timeout-graceful-shutdown 10 "$@"
