#!/bin/sh
# Starts one process of the suite in its container (deploy/Dockerfile's CMD).
#   SERVICE  gateway | identity | quota | catalog | orders | contracts | payments | demands | web
#   PORT     the port to listen on (baked into the image from the build argument PORT)
#   VOUCHER_SECRETS_DIR  where the secret files are (default /run/secrets, where compose mounts
#            a service's `secrets:`): each *.env file there is loaded into the environment
#            before anything starts (below). No such directory, or no *.env in it (Kubernetes,
#            whose Secrets arrive as environment variables): nothing is loaded.
# Extra arguments starting with '-' are passed on to uvicorn, e.g. `voucher-entrypoint --workers
# 2`; a command instead runs with the secrets loaded, in place of uvicorn, e.g. `docker compose
# exec identity voucher-entrypoint voucher-identity reencrypt` (a plain `docker compose exec`
# has the container's configured environment only: production.env, no secret).
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

# The secret files, read as compose reads an env_file, never by the shell (no `.`: nothing in
# a value is expanded or run): one KEY=VALUE a line, blank lines and `# comments` skipped;
# an unquoted value is taken as it is ($, quotes, '=' and spaces inside included; surrounding
# blanks and a ` # comment` after it dropped); "double quotes" enclose a value with \n, \r,
# \t, \\ and \" escapes (a PEM key on one line); 'single quotes' one taken as it is. A
# variable comes from one place only: one the container already has (production.env, the
# compose file's environment, the image) or that an earlier line or file set stops the
# start, as does a malformed line; the message names the file and the line, never a value.
secrets_fail() {  # message [where: the file and line by default]
    printf '%s\n' "voucher-entrypoint: ${2:-$voucher_file:$voucher_number}: $1" >&2
    exit 78
}

secrets_unescape() {  # the body of a double-quoted value -> voucher_value
    voucher_rest=$1
    voucher_value=
    while :; do
        case "$voucher_rest" in
            *\\*) ;;
            *)
                voucher_value=$voucher_value$voucher_rest
                return 0
                ;;
        esac
        voucher_value=$voucher_value${voucher_rest%%\\*}
        voucher_rest=${voucher_rest#*\\}
        case "$voucher_rest" in
            n*) voucher_value="$voucher_value$voucher_nl" ;;
            r*) voucher_value="$voucher_value$voucher_cr" ;;
            t*) voucher_value="$voucher_value$voucher_tab" ;;
            \\* | \"*) voucher_value="$voucher_value${voucher_rest%"${voucher_rest#?}"}" ;;
            *)
                voucher_value="$voucher_value\\"
                continue
                ;;
        esac
        voucher_rest=${voucher_rest#?}
    done
}

secrets_quoted() {  # $1: the quote; the value after `KEY=` -> voucher_value
    voucher_body=${voucher_value#?}
    case "$voucher_body" in
        *"$1"*) ;;
        *) secrets_fail "$voucher_key: no closing $2 quote (a value is one line: \\n for a line break)" ;;
    esac
    voucher_after=${voucher_body##*"$1"}
    voucher_body=${voucher_body%"$1"*}
    voucher_after=${voucher_after#"${voucher_after%%[![:space:]]*}"}
    case "$voucher_after" in
        "" | \#*) ;;  # nothing, or a comment
        *) secrets_fail "$voucher_key: text after the closing $2 quote" ;;
    esac
    if [ "$1" = '"' ]; then
        secrets_unescape "$voucher_body"
    else
        voucher_value=$voucher_body
    fi
}

load_secrets() {
    voucher_dir=${VOUCHER_SECRETS_DIR:-/run/secrets}
    [ -d "$voucher_dir" ] || return 0
    voucher_nl='
'
    voucher_cr=$(printf '\r')
    voucher_tab=$(printf '\t')
    for voucher_file in "$voucher_dir"/*.env; do
        [ -e "$voucher_file" ] || [ -L "$voucher_file" ] || continue  # no *.env at all
        # A secret file missing on the host is mounted as an empty directory by some Compose
        # versions: say so rather than start without it.
        [ -f "$voucher_file" ] || secrets_fail "not a file (is deploy/env/${voucher_file##*/} missing on the host?)" "$voucher_file"
        [ -r "$voucher_file" ] || secrets_fail "cannot be read by uid $(id -u) (deploy/README.md: the secret files' group)" "$voucher_file"
        voucher_number=0
        while IFS= read -r voucher_line || [ -n "$voucher_line" ]; do
            voucher_number=$((voucher_number + 1))
            voucher_line=${voucher_line#"${voucher_line%%[![:space:]]*}"}
            voucher_line=${voucher_line%"${voucher_line##*[![:space:]]}"}
            case "$voucher_line" in
                "" | \#*) continue ;;
                *=*) ;;
                *) secrets_fail "not a KEY=VALUE line" ;;
            esac
            voucher_key=${voucher_line%%=*}
            voucher_value=${voucher_line#*=}
            case "$voucher_key" in
                "" | [0-9]* | *[!A-Za-z0-9_]*)
                    secrets_fail "not a KEY=VALUE line (a name is letters, digits and _)"
                    ;;
                IFS | PS1 | PS2 | PS4 | OPTIND | OPTARG | PPID | ENV | voucher_*)
                    secrets_fail "$voucher_key is the shell's own name"
                    ;;
            esac
            if printenv "$voucher_key" >/dev/null 2>&1; then
                secrets_fail "$voucher_key is already set (the container's environment, or an earlier line or secret file): one place for each variable"
            fi
            case "$voucher_value" in
                \"*) secrets_quoted '"' double ;;
                \'*) secrets_quoted "'" single ;;
                *)
                    # an inline comment, after a blank
                    voucher_value=${voucher_value%%[[:space:]]#*}
                    voucher_value=${voucher_value%"${voucher_value##*[![:space:]]}"}
                    ;;
            esac
            export "$voucher_key=$voucher_value"
        done <"$voucher_file"
    done
    unset voucher_dir voucher_file voucher_number voucher_line voucher_key voucher_value \
        voucher_body voucher_after voucher_rest voucher_nl voucher_cr voucher_tab
}

load_secrets

if [ "$#" -gt 0 ]; then
    case "$1" in
        -*) ;;
        *) exec "$@" ;;
    esac
fi

exec uvicorn --factory "${package}.main:create_app" \
    --host 0.0.0.0 --port "$PORT" --no-proxy-headers --no-server-header \
    --http common.serving:ProblemHttpToolsProtocol \
    --timeout-graceful-shutdown 10 "$@"
