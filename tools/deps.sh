#!/usr/bin/env bash
# deps.sh GROUP... - installs the Debian packages a make target needs, if missing.
# Groups: build (compile the broker), test (run every test), reference (RabbitMQ).
# Runs apt-get update once per machine (stamp in /var/lib/apt/) before the
# first install. Non-root users get a message saying what to install.
set -eu

pkgs_build="gcc make pkg-config libssl-dev libjansson-dev librabbitmq-dev libmicrohttpd-dev libpcre2-dev"
pkgs_test="clang libclang-rt-14-dev libcmocka-dev openssl python3 python3-pytest python3-pika python3-kombu python3-amqp python3-celery python3-prometheus-client amqp-tools nodejs npm chromium"
pkgs_reference="rabbitmq-server"

want=""
for g in "$@"; do
    case "$g" in
    build) want="$want $pkgs_build" ;;
    test) want="$want $pkgs_build $pkgs_test" ;;
    reference) want="$want $pkgs_reference" ;;
    *) echo "deps.sh: unknown group '$g'" >&2; exit 2 ;;
    esac
done

missing=""
for p in $want; do
    # nodejs/npm may come from outside Debian; a working binary is enough.
    case "$p" in
    nodejs) command -v node >/dev/null 2>&1 && continue ;;
    npm) command -v npm >/dev/null 2>&1 && continue ;;
    esac
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "deps.sh: missing packages:$missing" >&2
    echo "deps.sh: run as root, or: sudo apt-get install -y$missing" >&2
    exit 1
fi
echo "deps.sh: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
stamp=/var/lib/apt/switchboard-apt-updated
if [ ! -f "$stamp" ]; then
    apt-get update -q >&2
    touch "$stamp"
fi
apt-get install -y -q --no-install-recommends $missing >&2
