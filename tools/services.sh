#!/usr/bin/env bash
# Make sure RabbitMQ and MariaDB answer on localhost: start them if installed and
# stopped, install them with apt when running as root, or fail with a clear message.
set -euo pipefail

log() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
    local port=$1 name=$2 _
    for _ in $(seq 1 60); do answers "$port" && return 0; sleep 1; done
    die "$name did not start answering on 127.0.0.1:$port within 60 s"
}

ensure() {
    local name=$1 port=$2 binary=$3 package=$4 start=$5
    answers "$port" && return 0
    if ! command -v "$binary" >/dev/null && [ ! -x "$binary" ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            log "installing $package"
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$package" >/dev/null 2>&1 || {
                DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null 2>&1
                DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$package" >/dev/null
            }
        else
            die "$name is not installed and nothing answers on 127.0.0.1:$port; install it with: sudo apt-get install $package"
        fi
    fi
    answers "$port" && return 0
    log "starting $name"
    bash -c "$start" >/dev/null 2>&1 || die "could not start $name with: $start"
    wait_port "$port" "$name"
}

ensure RabbitMQ 5672 rabbitmq-server rabbitmq-server "rabbitmq-server -detached"
ensure MariaDB 3306 /usr/sbin/mariadbd mariadb-server \
    "mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null; start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd"
log "RabbitMQ and MariaDB answer on 127.0.0.1"
