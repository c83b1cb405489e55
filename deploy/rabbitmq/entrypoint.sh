#!/bin/sh
# Entrypoint of the rabbitmq container (docker-compose.yml), run before the image's own
# docker-entrypoint.sh: renders the definitions that rabbitmq.conf imports at boot.
#
# Why: when definitions are imported at boot, RabbitMQ does not create the user from
# RABBITMQ_DEFAULT_USER/RABBITMQ_DEFAULT_PASS. So the users go into the imported file, each
# as a salted SHA-256 hash (rabbit_password_hashing_sha256) of its password computed here,
# next to the topology of definitions.json:
#   - the broker's administrator, RABBITMQ_DEFAULT_USER (tag administrator, every right): for
#     the operator and rabbitmqctl alone, never given to a service;
#   - one user per consuming service, named after it, without tags, with the permissions of
#     permissions.json (its own queues and the exchange); its password is
#     <SERVICE>_AMQP_PASSWORD.
# The passwords come from the compose secret /run/secrets/rabbitmq (a file, not the
# container's environment: deploy/env/rabbitmq.secrets.env, made by
# deploy/env/make-credentials.py), or from the environment. Rendered at every start: a
# changed password takes effect on the next restart.
set -eu

secrets="${VOUCHER_SECRETS_FILE:-/run/secrets/rabbitmq}"
if [ -r "$secrets" ]; then
    set -a
    # shellcheck disable=SC1090
    . "$secrets"
    set +a
fi

: "${RABBITMQ_DEFAULT_USER:?RABBITMQ_DEFAULT_USER is not set}"
: "${RABBITMQ_DEFAULT_PASS:?RABBITMQ_DEFAULT_PASS is not set (deploy/env/rabbitmq.secrets.env)}"

here=$(dirname "$0")
template="${VOUCHER_DEFINITIONS_TEMPLATE:-$here/definitions.json}"
grants="${VOUCHER_PERMISSIONS:-$here/permissions.json}"
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

# The services' users: one permission a line in permissions.json.
services=$(sed -n 's/^ *{"user": "\([a-z0-9_]*\)".*/\1/p' "$grants")
variables="RABBITMQ_DEFAULT_PASS"
for service in $services; do
    if [ "$service" = "$RABBITMQ_DEFAULT_USER" ]; then
        echo "rabbitmq entrypoint: the administrator may not be named like the service $service" >&2
        exit 64
    fi
    var="$(echo "$service" | tr 'a-z' 'A-Z')_AMQP_PASSWORD"
    if [ -z "$(printenv "$var" || true)" ]; then
        echo "rabbitmq entrypoint: $var is not set (deploy/env/rabbitmq.secrets.env)" >&2
        exit 64
    fi
    variables="$variables $var"
done

# base64(salt ++ sha256(salt ++ password)) with a 4-byte random salt, as RabbitMQ stores it,
# one line per variable named; the password's bytes as given (UTF-8), whatever the locale.
hashes=$(VOUCHER_HASH_VARIABLES="$variables" erl -noshell -eval '
    Hash = fun(Name) ->
        Salt = crypto:strong_rand_bytes(4),
        Var = os:getenv(Name),
        Pass = case file:native_name_encoding() of
            utf8 -> unicode:characters_to_binary(Var);
            latin1 -> list_to_binary(Var)
        end,
        Digest = crypto:hash(sha256, <<Salt/binary, Pass/binary>>),
        io:put_chars([base64:encode(<<Salt/binary, Digest/binary>>), "\n"])
    end,
    lists:foreach(Hash, string:tokens(os:getenv("VOUCHER_HASH_VARIABLES"), " ")),
    halt(0).')

user() { # name hash tags
    printf '{"name": "%s", "password_hash": "%s", "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": [%s]}' \
        "$1" "$2" "$3"
}

umask 077
tmp="$out.tmp"
{
    echo "{"
    printf '  "users": [\n    '
    user "$RABBITMQ_DEFAULT_USER" "$(echo "$hashes" | sed -n 1p)" '"administrator"'
    line=2
    for service in $services; do
        printf ',\n    '
        user "$service" "$(echo "$hashes" | sed -n "${line}p")" ''
        line=$((line + 1))
    done
    printf '\n  ],\n'
    printf '  "permissions": [\n    {"user": "%s", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}' \
        "$RABBITMQ_DEFAULT_USER"
    sed -e '1d' -e '$d' -e 's/,$//' "$grants" | while IFS= read -r grant; do
        printf ',\n  %s' "$grant"
    done
    printf '\n  ],\n'
    tail -n +2 "$template"
} >"$tmp"
mv "$tmp" "$out"
if [ "$(id -u)" = 0 ] && id rabbitmq >/dev/null 2>&1; then
    chown rabbitmq:rabbitmq "$out"
fi

# The services' passwords are not the broker's business once hashed.
for var in $variables; do
    [ "$var" = RABBITMQ_DEFAULT_PASS ] || unset "$var"
done

exec docker-entrypoint.sh "$@"
