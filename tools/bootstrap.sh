#!/usr/bin/env bash
# Make .venv in the repo root ready: system build packages, virtualenv, pinned installs.
# Sourced by tools/test.sh and tools/demo.sh; safe to run again (skips work already done).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"
PY=${PYTHON:-python3}

log() { printf '[bootstrap] %s\n' "$*" >&2; }
die() { printf '[bootstrap] ERROR: %s\n' "$*" >&2; exit 1; }

apt_install() {
    # Install Debian packages when we may; otherwise say exactly what is missing.
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        log "installing with apt: $*"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1 || {
            DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null 2>&1
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null
        }
    else
        die "missing system packages: $* (install them with: sudo apt-get install $*)"
    fi
}

"$PY" -c 'import sys; sys.exit(sys.version_info[:2] < (3, 11))' \
    || die "Python 3.11 or newer is needed ($PY is $("$PY" -V 2>&1))"

missing=()
"$PY" -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
command -v pkg-config >/dev/null || missing+=(pkg-config)
pkg-config --exists libvirt 2>/dev/null || missing+=(libvirt-dev)
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"

if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV"
    "$PY" -m venv "$VENV"
fi

# Reinstall only when a requirements or constraints file changed.
stamp="$VENV/.slm-installed"
want=$(cat "$ROOT"/upper-constraints.txt "$ROOT"/*requirements.txt "$ROOT"/doc/requirements.txt \
    "$ROOT"/setup.cfg | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "installing pinned dependencies into .venv (first run takes a few minutes)"
    "$VENV/bin/python" -m pip install -q --upgrade pip 2> >(grep -v 'is ignored' >&2)
    "$VENV/bin/python" -m pip install -q -c "$ROOT/upper-constraints.txt" \
        -r "$ROOT/requirements.txt" -r "$ROOT/test-requirements.txt" \
        -r "$ROOT/libvirt-requirements.txt" -r "$ROOT/doc/requirements.txt" 2> >(grep -v 'is ignored' >&2)
    "$VENV/bin/python" -m pip install -q --no-deps -e "$ROOT" 2> >(grep -v 'is ignored' >&2)
    "$VENV/bin/python" -c 'import slm_plugin, oslo_messaging, oslo_db, libvirt, matplotlib' \
        || die "installation into .venv failed; see the pip output above"
    echo "$want" > "$stamp"
fi
