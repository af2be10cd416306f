# shellcheck shell=bash
# devstack plugin of slm_plugin: synchronized live migration of server groups.
#
#   slm-api     the REST API (keystone service type "slm"), on the controller
#   slm-engine  plans and steers the migrations, on the controller
#   slm-agent   measures guests and drives migrations through libvirt, on the
#               compute hosts
#
# devstack sources this file as ``plugin.sh MODE [PHASE]`` after devstack/settings.
# Every SLM_* variable comes from there, every other one is devstack's (SC2154
# cannot see either).
# shellcheck disable=SC2154

# Minimum versions for virDomainStartDirtyRateCalc, the agent's dirty-rate measurement
SLM_MIN_LIBVIRT_VERSION=7.2.0
SLM_MIN_QEMU_VERSION=5.2.0


# Helpers
# -------

# slm_version_ge A B: whether version A >= version B (dotted numbers)
function slm_version_ge {
    [[ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n 1)" == "$2" ]]
}

# Fail or warn, as SLM_REQUIRE_DIRTY_RATE says
function _slm_dirty_rate_problem {
    if [[ "$SLM_REQUIRE_DIRTY_RATE" == "True" ]]; then
        die "$LINENO" "$1 (set SLM_REQUIRE_DIRTY_RATE=False to stack anyway; the agent then cannot measure dirty rates)"
    fi
    warn "$LINENO" "$1"
}

# The agent measures dirty rates with virDomainStartDirtyRateCalc: libvirt >= 7.2
# with QEMU >= 5.2. Read both from the running daemon.
function slm_check_libvirt {
    local out daemon qemu
    out=$(sudo virsh -c "$SLM_LIBVIRT_URI" version 2>/dev/null) || out=""
    daemon=$(sed -n 's/^Running against daemon: *\([0-9][0-9.]*\).*/\1/p' <<<"$out")
    qemu=$(sed -n 's/^Running hypervisor: *QEMU *\([0-9][0-9.]*\).*/\1/p' <<<"$out")
    if [[ -z "$daemon" || -z "$qemu" ]]; then
        warn "$LINENO" "slm-agent: could not read the libvirt and QEMU versions from 'virsh -c $SLM_LIBVIRT_URI version'; the agent needs libvirt >= $SLM_MIN_LIBVIRT_VERSION and QEMU >= $SLM_MIN_QEMU_VERSION"
        return 0
    fi
    if ! slm_version_ge "$daemon" "$SLM_MIN_LIBVIRT_VERSION"; then
        _slm_dirty_rate_problem "slm-agent: libvirt $daemon is too old for dirty-rate measurement (virDomainStartDirtyRateCalc needs libvirt >= $SLM_MIN_LIBVIRT_VERSION)"
    fi
    if ! slm_version_ge "$qemu" "$SLM_MIN_QEMU_VERSION"; then
        _slm_dirty_rate_problem "slm-agent: QEMU $qemu is too old for dirty-rate measurement (calc-dirty-rate needs QEMU >= $SLM_MIN_QEMU_VERSION)"
    fi
}


# Install
# -------

function install_slm {
    setup_develop "$SLM_DIR"
    if is_service_enabled slm-agent; then
        # libvirt-python; devstack's libvirt setup installed the headers it builds with
        pip_install -r "$SLM_DIR/libvirt-requirements.txt"
    fi
}


# Configure
# ---------

function configure_slm {
    sudo install -d -o "$STACK_USER" -m 755 "$SLM_CONF_DIR"
    rm -f "$SLM_CONF"

    iniset "$SLM_CONF" DEFAULT debug "$ENABLE_DEBUG_LOG_LEVEL"
    iniset_rpc_backend slm "$SLM_CONF"
    if is_service_enabled slm-api slm-engine; then
        configure_slm_controller
    fi
    if is_service_enabled slm-agent; then
        configure_slm_agent
    fi
    if [[ "$SLM_ENABLE_MAINTENANCE_HOOK" == "True" ]]; then
        configure_slm_maintenance
    fi
}

# What slm-api and slm-engine read; a compute node running only the agent gets
# none of it (no database or Nova credentials there)
function configure_slm_controller {
    iniset "$SLM_CONF" database connection "$(database_connection_url slm)"

    iniset "$SLM_CONF" api bind_host "$SLM_SERVICE_LISTEN_ADDRESS"
    iniset "$SLM_CONF" api bind_port "$SLM_SERVICE_PORT"
    iniset "$SLM_CONF" api auth_strategy keystone
    configure_keystone_authtoken_middleware "$SLM_CONF" slm

    iniset "$SLM_CONF" engine cloud "$SLM_CLOUD_DRIVER"
    iniset "$SLM_CONF" engine default_strategy "$SLM_STRATEGY"

    # the engine's connection to the Compute API (keystoneauth options)
    iniset "$SLM_CONF" nova auth_type password
    iniset "$SLM_CONF" nova auth_url "$KEYSTONE_SERVICE_URI"
    iniset "$SLM_CONF" nova username "$SLM_NOVA_USERNAME"
    iniset "$SLM_CONF" nova password "$SLM_NOVA_PASSWORD"
    iniset "$SLM_CONF" nova project_name "$SLM_NOVA_PROJECT_NAME"
    iniset "$SLM_CONF" nova user_domain_name "$SLM_NOVA_USER_DOMAIN_NAME"
    iniset "$SLM_CONF" nova project_domain_name "$SLM_NOVA_PROJECT_DOMAIN_NAME"
    iniset "$SLM_CONF" nova region_name "$REGION_NAME"

    local use_agent=$SLM_USE_AGENT
    if [[ -z "$use_agent" ]]; then
        use_agent=False
        if is_service_enabled slm-agent; then
            use_agent=True
        fi
    fi
    iniset "$SLM_CONF" nova use_agent "$use_agent"
    configure_slm_from_nova_computes
}

# What Nova's computes do to a live migration, which the Compute API does not say and
# the planner must know: how many run at once out of one host (the rest are queued),
# whether Nova starts them with auto-converge, and whether its force-complete may use
# post-copy. Read where this node has Nova's configuration; Nova's defaults otherwise.
function configure_slm_from_nova_computes {
    local conf value
    for conf in "${NOVA_CPU_CONF:-}" "${NOVA_CONF:-}"; do
        if [[ -z "$conf" || ! -f "$conf" ]]; then
            continue
        fi
        value=$(iniget "$conf" DEFAULT max_concurrent_live_migrations)
        if [[ -n "$value" ]]; then
            iniset "$SLM_CONF" nova max_concurrent_live_migrations "$value"
        fi
        value=$(iniget "$conf" libvirt live_migration_permit_auto_converge)
        if [[ -n "$value" ]]; then
            iniset "$SLM_CONF" nova permit_auto_converge "$value"
        fi
        value=$(iniget "$conf" libvirt live_migration_permit_post_copy)
        if [[ -n "$value" ]]; then
            iniset "$SLM_CONF" planning allow_post_copy "$value"
        fi
        return
    done
}

function configure_slm_agent {
    iniset "$SLM_CONF" agent libvirt_uri "$SLM_LIBVIRT_URI"
    # The engine addresses the agent by the host name Nova reports for the server
    if [[ -n "${NOVA_CPU_CONF:-}" && -f "$NOVA_CPU_CONF" ]]; then
        local host
        host=$(iniget "$NOVA_CPU_CONF" DEFAULT host)
        if [[ -n "$host" ]]; then
            iniset "$SLM_CONF" DEFAULT host "$host"
        fi
    fi
    if ! is_service_enabled n-cpu || [[ "${VIRT_DRIVER:-libvirt}" != "libvirt" ]]; then
        warn "$LINENO" "slm-agent is enabled on a node without Nova's libvirt compute (n-cpu with VIRT_DRIVER=libvirt); it has no guests to measure"
    fi
    # read-write access to libvirt's socket: the stack user in its group, and the
    # agent started in that group (run_process' third argument)
    if ! getent group "$SLM_LIBVIRT_GROUP" >/dev/null; then
        die "$LINENO" "slm-agent: group $SLM_LIBVIRT_GROUP, owner of libvirt's read-write socket, does not exist (set SLM_LIBVIRT_GROUP)"
    fi
    add_user_to_group "$STACK_USER" "$SLM_LIBVIRT_GROUP"
    slm_check_libvirt
}

# Maintenance mode listens to Nova's versioned service.update notifications
function configure_slm_maintenance {
    iniset "$SLM_CONF" maintenance enabled True
    if [[ -n "$SLM_MAINTENANCE_TARGET_AZ" ]]; then
        iniset "$SLM_CONF" maintenance target_availability_zone "$SLM_MAINTENANCE_TARGET_AZ"
    elif [[ "$SLM_CLOUD_DRIVER" == "nova" ]] && is_service_enabled slm-engine; then
        warn "$LINENO" "SLM_ENABLE_MAINTENANCE_HOOK: set SLM_MAINTENANCE_TARGET_AZ, the zone the nova cloud driver moves the groups of a host under maintenance to"
    fi
    local conf found=""
    for conf in "${NOVA_CONF:-}" "${NOVA_CPU_CONF:-}"; do
        if [[ -n "$conf" && -f "$conf" ]]; then
            iniset "$conf" notifications notification_format both
            if [[ -z "$(iniget "$conf" oslo_messaging_notifications driver)" ]]; then
                iniset "$conf" oslo_messaging_notifications driver messagingv2
            fi
            found=1
        fi
    done
    if [[ -z "$found" ]]; then
        warn "$LINENO" "SLM_ENABLE_MAINTENANCE_HOOK: no Nova configuration on this node; set [notifications] notification_format = both where nova-api runs"
    fi
}

function create_slm_accounts {
    create_service_user slm admin
    get_or_create_service slm "$SLM_SERVICE_TYPE" "Synchronized live migration of server groups"
    get_or_create_endpoint "$SLM_SERVICE_TYPE" "$REGION_NAME" \
        "$SLM_SERVICE_PROTOCOL://$SLM_SERVICE_HOST:$SLM_SERVICE_PORT/"
}

function init_slm_db {
    recreate_database slm
    "$SLM_BIN_DIR/slm-manage" --config-file "$SLM_CONF" db upgrade
}


# Start and stop
# --------------

function start_slm {
    if is_service_enabled slm-api; then
        run_process slm-api "$SLM_BIN_DIR/slm-api --config-file $SLM_CONF"
        local url="$SLM_SERVICE_PROTOCOL://$SLM_SERVICE_HOST:$SLM_SERVICE_PORT/"
        if ! wait_for_service "$SERVICE_TIMEOUT" "$url"; then
            die "$LINENO" "slm-api did not start answering on $url"
        fi
    fi
    if is_service_enabled slm-engine; then
        run_process slm-engine "$SLM_BIN_DIR/slm-engine --config-file $SLM_CONF"
    fi
    if is_service_enabled slm-agent; then
        run_process slm-agent "$SLM_BIN_DIR/slm-agent --config-file $SLM_CONF" \
            "$SLM_LIBVIRT_GROUP"
    fi
}

function stop_slm {
    local service
    for service in slm-api slm-engine slm-agent; do
        stop_process "$service"
    done
}

function cleanup_slm {
    sudo rm -rf "$SLM_CONF_DIR"
}


# Integration tests
# -----------------

# The variables tests/integration/test_real_cloud.py reads, for this cloud
function configure_slm_integration_tests {
    sudo install -d -o "$STACK_USER" -m 755 "$(dirname "$SLM_INTEGRATION_ENV")"
    {
        echo "export SLM_TEST_CLOUD=devstack-admin"
        echo "export SLM_TEST_IMAGE=${DEFAULT_IMAGE_NAME:-}"
        echo "export SLM_TEST_FLAVOR=${DEFAULT_INSTANCE_TYPE:-m1.tiny}"
        echo "export SLM_TEST_NETWORK=${PRIVATE_NETWORK_NAME:-private}"
        if [[ -n "$SLM_TEST_TARGET_AZ" ]]; then
            echo "export SLM_TEST_TARGET_AZ=$SLM_TEST_TARGET_AZ"
        else
            echo "# export SLM_TEST_TARGET_AZ=<an availability zone with other compute hosts>"
        fi
    } > "$SLM_INTEGRATION_ENV"
}


# Dispatch
# --------

if is_service_enabled slm-api slm-engine slm-agent; then
    if [[ "$1" == "stack" && "${2:-}" == "install" ]]; then
        echo_summary "Installing slm_plugin"
        install_slm
    elif [[ "$1" == "stack" && "${2:-}" == "post-config" ]]; then
        echo_summary "Configuring slm_plugin"
        configure_slm
        if is_service_enabled slm-api; then
            create_slm_accounts
        fi
        if is_service_enabled slm-api slm-engine; then
            init_slm_db
        fi
    elif [[ "$1" == "stack" && "${2:-}" == "extra" ]]; then
        echo_summary "Starting slm_plugin"
        start_slm
    elif [[ "$1" == "stack" && "${2:-}" == "test-config" ]]; then
        configure_slm_integration_tests
    fi

    if [[ "$1" == "unstack" ]]; then
        stop_slm
    fi

    if [[ "$1" == "clean" ]]; then
        cleanup_slm
    fi
fi
