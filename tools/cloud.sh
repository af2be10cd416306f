#!/usr/bin/env bash
# A real OpenStack on this machine (tools/cloud/cloud.py says what runs and how):
#   tools/cloud.sh install   the cloud's virtualenv (.cloud/venv), pinned by upper-constraints.txt
#                            and tools/cloud/constraints.txt; done by "up" when missing
#   tools/cloud.sh up        bring up (idempotent: starts only what is not running)
#   tools/cloud.sh status    every recorded process and API
#   tools/cloud.sh stop      stop every recorded process by its PID (data kept)
#   tools/cloud.sh down      stop, then drop the cloud's databases, vhost and state
#   tools/cloud.sh test      tests/integration/test_slm_cloud.py against it (real openstack CLI)
#   tools/cloud.sh env       the variables the openstack CLI and the tests need (eval it)
# SLM_CLOUD_HOSTS (default 4) compute hosts, half in az1, half in az2. Needs root, the
# machine's MariaDB and RabbitMQ on 127.0.0.1, and tools/e2e-setup.sh's QEMU and guest.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CLOUD=${SLM_CLOUD_DIR:-$ROOT/.cloud}
VENV=${SLM_CLOUD_VENV:-$CLOUD/venv}
PACKAGES=(keystone openstack-placement glance neutron nova uwsgi python-openstackclient
          python-novaclient keystonemiddleware libvirt-python PyMySQL pytest pytest-timeout)

log() { printf '[cloud] %s\n' "$*" >&2; }
die() { printf '[cloud] ERROR: %s\n' "$*" >&2; exit 1; }

install() {
    mkdir -p "$CLOUD"
    local stamp="$VENV/.installed" want
    want=$( { cat "$ROOT/upper-constraints.txt" "$ROOT/tools/cloud/constraints.txt" \
              "$ROOT/setup.cfg"; echo "${PACKAGES[*]}"; } | sha1sum | cut -c1-12)
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return 0
    fi
    log "installing the cloud's virtualenv in $VENV (pip log: $CLOUD/pip.log)"
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV" || die "python3 -m venv $VENV failed"
    local start=$SECONDS
    if ! "$VENV/bin/pip" install -c "$ROOT/upper-constraints.txt" \
            -c "$ROOT/tools/cloud/constraints.txt" "${PACKAGES[@]}" -e "$ROOT" \
            >>"$CLOUD/pip.log" 2>&1; then
        tail -n 30 "$CLOUD/pip.log" >&2
        die "pip install failed (whole log: $CLOUD/pip.log)"
    fi
    echo "$want" > "$stamp"
    log "virtualenv ready in $((SECONDS - start)) s"
}

case "${1:-}" in
    install) install ;;
    up) install; exec "$VENV/bin/python" "$ROOT/tools/cloud/cloud.py" "$@" ;;
    stop|down|status)
        [ -x "$VENV/bin/python" ] || die "no cloud virtualenv in $VENV (nothing to $1)"
        exec "$VENV/bin/python" "$ROOT/tools/cloud/cloud.py" "$@" ;;
    test)
        [ -x "$VENV/bin/python" ] || die "no cloud virtualenv in $VENV: tools/cloud.sh up first"
        shift
        export OS_CLIENT_CONFIG_FILE=$CLOUD/clouds.yaml OS_CLOUD=slm-cloud SLM_REAL_CLOUD=1
        export PATH=$VENV/bin:$PATH
        cd "$ROOT"
        exec "$VENV/bin/python" -m pytest -p no:cacheprovider -v \
            "${@:-tests/integration/test_slm_cloud.py}" ;;
    env)
        echo "export OS_CLIENT_CONFIG_FILE=$CLOUD/clouds.yaml OS_CLOUD=slm-cloud"
        echo "export PATH=$VENV/bin:\$PATH" ;;
    *) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
