#!/bin/sh
# Entrypoint of the rabbitmq container (docker-compose.yml), run before the image's own
# docker-entrypoint.sh: renders the definitions that rabbitmq.conf imports at boot.
#
# Why: when definitions are imported at boot, RabbitMQ does not create the user from
# RABBITMQ_DEFAULT_USER/RABBITMQ_DEFAULT_PASS. So the user goes into the imported file, as
# a salted SHA-256 hash (rabbit_password_hashing_sha256) of RABBITMQ_DEFAULT_PASS computed
# here, next to the topology of definitions.json. Rendered at every start: a changed
# password in the env file takes effect on the next restart.
set -eu

: "${RABBITMQ_DEFAULT_USER:?RABBITMQ_DEFAULT_USER is not set}"
: "${RABBITMQ_DEFAULT_PASS:?RABBITMQ_DEFAULT_PASS is not set (deploy/env/secrets.env)}"

here=$(dirname "$0")
template="${VOUCHER_DEFINITIONS_TEMPLATE:-$here/definitions.json}"
out="${VOUCHER_DEFINITIONS_OUT:-/etc/rabbitmq/voucher-definitions.json}"

case "$RABBITMQ_DEFAULT_USER" in
    *[!A-Za-z0-9_.-]*)
        echo "rabbitmq entrypoint: RABBITMQ_DEFAULT_USER may hold only letters, digits, '_', '.', '-'" >&2
        exit 64
        ;;
esac
if [ "$(head -n 1 "$template")" != "{" ]; then
    echo "rabbitmq entrypoint: $template must start with a line holding only '{'" >&2
    exit 65
fi

# base64(salt ++ sha256(salt ++ password)) with a 4-byte random salt, as RabbitMQ stores it;
# the password's bytes as given (UTF-8), whatever the locale.
hash=$(erl -noshell -eval '
    Salt = crypto:strong_rand_bytes(4),
    Var = os:getenv("RABBITMQ_DEFAULT_PASS"),
    Pass = case file:native_name_encoding() of
        utf8 -> unicode:characters_to_binary(Var);
        latin1 -> list_to_binary(Var)
    end,
    Hash = crypto:hash(sha256, <<Salt/binary, Pass/binary>>),
    io:put_chars(base64:encode(<<Salt/binary, Hash/binary>>)),
    halt(0).')

umask 077
tmp="$out.tmp"
{
    echo "{"
    printf '  "users": [{"name": "%s", "password_hash": "%s", "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ["administrator"]}],\n' \
        "$RABBITMQ_DEFAULT_USER" "$hash"
    printf '  "permissions": [{"user": "%s", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}],\n' \
        "$RABBITMQ_DEFAULT_USER"
    tail -n +2 "$template"
} >"$tmp"
mv "$tmp" "$out"
if [ "$(id -u)" = 0 ] && id rabbitmq >/dev/null 2>&1; then
    chown rabbitmq:rabbitmq "$out"
fi

exec docker-entrypoint.sh "$@"
