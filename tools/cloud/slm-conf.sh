#!/usr/bin/env bash
# slm.conf for the real cloud of tools/cloud.sh, written by the devstack plugin's own
# configuration phase (devstack/plugin.sh's configure_slm), with small stand-ins for the
# devstack functions it calls:
#   slm-conf.sh controller OUTPUT                 slm-api and slm-engine
#   slm-conf.sh agent OUTPUT NOVA_COMPUTE_CONF    the slm-agent next to one nova-compute
# Environment: SLM_CLOUD_VENV, SLM_CLOUD_TRANSPORT, SLM_CLOUD_DB, SLM_CLOUD_KEYSTONE,
# SLM_CLOUD_PASSWORD, SLM_CLOUD_PORT, SLM_CLOUD_NOVA_CONF, SLM_MAINTENANCE_TARGET_AZ.
# Every variable below is read by the sourced devstack/plugin.sh.
# shellcheck disable=SC2034,SC1091
set -eo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MODE=$1
OUT=$2
PY="$SLM_CLOUD_VENV/bin/python"

# -- what devstack would provide --------------------------------------------------------
function iniset {
    [[ "$1" == "-sudo" ]] && shift
    touch "$1"
    "$PY" "$ROOT/tools/cloud/ini.py" set "$@"
}
function iniget { "$PY" "$ROOT/tools/cloud/ini.py" get "$@"; }
function is_service_enabled {
    local s
    for s in "$@"; do [[ ",$ENABLED_SERVICES," == *",$s,"* ]] && return 0; done
    return 1
}
function warn { echo "[slm-conf] WARNING: ${*:2}" >&2; }
function die { echo "[slm-conf] ERROR: ${*:2}" >&2; exit 1; }
function echo_summary { echo "[slm-conf] $*" >&2; }
function add_user_to_group { :; }
function database_connection_url { echo "$SLM_CLOUD_DB"; }
function iniset_rpc_backend { iniset "$2" DEFAULT transport_url "$SLM_CLOUD_TRANSPORT"; }
function configure_keystone_authtoken_middleware {
    local conf=$1 user=$2 section=${3:-keystone_authtoken}
    iniset "$conf" "$section" auth_type password
    iniset "$conf" "$section" interface public
    iniset "$conf" "$section" auth_url "$KEYSTONE_SERVICE_URI"
    iniset "$conf" "$section" www_authenticate_uri "$KEYSTONE_SERVICE_URI"
    iniset "$conf" "$section" username "$user"
    iniset "$conf" "$section" password "$SERVICE_PASSWORD"
    iniset "$conf" "$section" user_domain_name Default
    iniset "$conf" "$section" project_name service
    iniset "$conf" "$section" project_domain_name Default
    iniset "$conf" "$section" service_token_roles_required True
    iniset "$conf" "$section" region_name "$REGION_NAME"
}

STACK_USER=root
ENABLE_DEBUG_LOG_LEVEL=False
REGION_NAME=RegionOne
SERVICE_PASSWORD=$SLM_CLOUD_PASSWORD
SERVICE_PROJECT_NAME=service
SERVICE_DOMAIN_NAME=Default
KEYSTONE_SERVICE_URI=$SLM_CLOUD_KEYSTONE
SLM_CONF=$OUT
SLM_CONF_DIR=$(dirname "$OUT")
SLM_SERVICE_LISTEN_ADDRESS=127.0.0.1
SLM_SERVICE_PORT=$SLM_CLOUD_PORT
SLM_CLOUD_DRIVER=nova
SLM_STRATEGY=synchronized
SLM_NOVA_USERNAME=nova
SLM_NOVA_PASSWORD=$SLM_CLOUD_PASSWORD
SLM_NOVA_PROJECT_NAME=service
SLM_NOVA_USER_DOMAIN_NAME=Default
SLM_NOVA_PROJECT_DOMAIN_NAME=Default
SLM_USE_AGENT=True
SLM_LIBVIRT_GROUP=root
SLM_LIBVIRT_URI=qemu:///system   # the agent runs inside its host's namespace
SLM_REQUIRE_DIRTY_RATE=True
SLM_ENABLE_MAINTENANCE_HOOK=True
SLM_MAINTENANCE_TARGET_AZ=${SLM_MAINTENANCE_TARGET_AZ:-az2}
VIRT_DRIVER=libvirt
case "$MODE" in
    controller) ENABLED_SERVICES=slm-api,slm-engine; NOVA_CONF=$SLM_CLOUD_NOVA_CONF ;;
    agent) ENABLED_SERVICES=slm-agent,n-cpu; NOVA_CPU_CONF=$3; NOVA_CONF= ;;
    *) die 0 "usage: slm-conf.sh controller|agent OUTPUT [NOVA_COMPUTE_CONF]" ;;
esac

# shellcheck source=../../devstack/plugin.sh
source "$ROOT/devstack/plugin.sh"   # with no arguments it only defines its functions
configure_slm
