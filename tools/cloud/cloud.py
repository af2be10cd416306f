"""A real OpenStack on this machine, for trying slm_plugin and for its real-cloud tests.

Keystone, Placement, Glance, Neutron (API server only), Nova (api, conductor,
scheduler) and N nova-compute "hosts" with the libvirt driver. Each host is a mount
+ UTS namespace with its own libvirtd and its own nova-compute (which joins the
libvirtd's namespaces), its own loopback address (127.0.0.2, 127.0.0.3, ...) and its
own folder bind-mounted on the common instances path. APIs run under uWSGI on
127.0.0.1; RabbitMQ and MariaDB are the machine's (a vhost and databases of the
cloud's own). Every process started is recorded in .cloud/state.json and stopped by
its PID.

Run through tools/cloud.sh (which makes the virtualenv): up | stop | down | status | env.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid as uuidlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLOUD = Path(os.environ.get("SLM_CLOUD_DIR", ROOT / ".cloud"))
VENV = Path(os.environ.get("SLM_CLOUD_VENV", CLOUD / "venv"))
BIN = VENV / "bin"
ETC = CLOUD / "etc"
LOG = CLOUD / "log"
DONE = CLOUD / "done"
STATE = CLOUD / "state.json"
E2E = Path(os.environ.get("SLM_E2E_DIR", ROOT / ".cache" / "e2e"))
INSTANCES = Path("/var/lib/slm-cloud/instances")  # a mount point; each host binds its own
NHOSTS = int(os.environ.get("SLM_CLOUD_HOSTS", "4"))
PASSWORD = "slmcloud"
PREFIX = "slmcloud_"
VHOST = "slmcloud"
TRANSPORT = f"rabbit://guest:guest@127.0.0.1:5672/{VHOST}"
REGION = "RegionOne"
PORTS = {"keystone": 15000, "placement": 15778, "glance": 15292, "neutron": 15696,
         "nova": 15774, "slm": 15740}
KEYSTONE = f"http://127.0.0.1:{PORTS['keystone']}/v3"
DATABASES = ["keystone", "placement", "glance", "neutron", "nova_api", "nova", "nova_cell0",
             "slm"]
SERVICES = {  # user -> (service name, type, url)
    "placement": ("placement", "placement", f"http://127.0.0.1:{PORTS['placement']}"),
    "glance": ("glance", "image", f"http://127.0.0.1:{PORTS['glance']}"),
    "neutron": ("neutron", "network", f"http://127.0.0.1:{PORTS['neutron']}"),
    "nova": ("nova", "compute", f"http://127.0.0.1:{PORTS['nova']}/v2.1"),
}
PRIVATE = {"etc": "/etc/libvirt", "run": "/run/libvirt", "lib": "/var/lib/libvirt",
           "log": "/var/log/libvirt", "cache": "/var/cache/libvirt",
           "instances": str(INSTANCES)}


class CloudError(RuntimeError):
    pass


def log(msg: str) -> None:
    print(f"[cloud {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def db_url(name: str) -> str:
    return f"mysql+pymysql://root@127.0.0.1/{PREFIX}{name}?charset=utf8"


def hosts() -> list[dict]:
    """name, address, zone and private folder of every compute host."""
    out = []
    for i in range(NHOSTS):
        out.append({"name": f"cloud-h{i + 1}", "address": f"127.0.0.{i + 2}",
                    "zone": "az1" if i < (NHOSTS + 1) // 2 else "az2",
                    "dir": CLOUD / "hosts" / f"cloud-h{i + 1}",
                    "ports": (49152 + 200 + 64 * i, 49152 + 200 + 64 * i + 63)})
    return out


# -- state and processes --------------------------------------------------------------------

def load_state() -> dict:
    if STATE.exists():
        return json.loads(STATE.read_text())
    return {"procs": {}}


def save_state(state: dict) -> None:
    CLOUD.mkdir(parents=True, exist_ok=True)
    tmp = STATE.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
    tmp.replace(STATE)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def proc_start_time(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def running(state: dict, name: str) -> bool:
    rec = state["procs"].get(name)
    return bool(rec) and alive(rec["pid"]) and proc_start_time(rec["pid"]) == rec.get("start")


def kill_pid(pid: int, grace: float) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not alive(pid):
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def env_for(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{CLOUD / 'bin'}:{BIN}:{env.get('PATH', '/usr/bin:/bin')}"
    env.pop("OS_CLOUD", None)
    env.update(extra or {})
    return env


def spawn(state: dict, name: str, argv: list[str], extra_env: dict | None = None,
          kind: str = "service") -> int:
    """Start argv in a session of its own, its output in .cloud/log/NAME.log; record its PID."""
    LOG.mkdir(parents=True, exist_ok=True)
    with open(LOG / f"{name}.log", "ab") as out:
        out.write(f"\n==== {time.strftime('%F %T')} {' '.join(argv)}\n".encode())
        out.flush()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, env=env_for(extra_env),
                                start_new_session=True, cwd=CLOUD)
    state["procs"][name] = {"pid": proc.pid, "start": proc_start_time(proc.pid), "kind": kind,
                            "argv": argv}
    save_state(state)
    return proc.pid


def log_tail(name: str, n: int = 3000) -> str:
    path = LOG / f"{name}.log"
    return path.read_text(errors="replace")[-n:] if path.exists() else "(no log)"


def run(argv: list[str], what: str, timeout: float = 600, extra_env: dict | None = None,
        check: bool = True) -> subprocess.CompletedProcess:
    LOG.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                          env=env_for(extra_env))
    with open(LOG / "commands.log", "a") as f:
        f.write(f"==== {time.strftime('%F %T')} rc={proc.returncode} {' '.join(argv)}\n"
                f"{proc.stdout}{proc.stderr}")
    if check and proc.returncode != 0:
        raise CloudError(f"{what} failed (exit {proc.returncode}): {' '.join(argv)}\n"
                         f"{(proc.stderr or proc.stdout)[-3000:]}")
    return proc


def port_taken(port: int) -> bool:
    import socket
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as r:
            return r.status < 500
    except urllib.error.HTTPError as e:
        return e.code < 500
    except Exception:
        return False


def wait_http(state: dict, name: str, url: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not http_ok(url):
        if not running(state, name):
            raise CloudError(f"{name} exited; the end of {LOG / (name + '.log')}:\n"
                             f"{log_tail(name)}")
        if time.monotonic() > deadline:
            raise CloudError(f"{name} did not answer on {url} within {timeout:.0f} s; "
                             f"the end of its log:\n{log_tail(name)}")
        time.sleep(0.3)


# -- configuration files --------------------------------------------------------------------

def ini(path: Path, sections: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for section, options in sections.items():
        lines.append(f"[{section}]")
        for key, value in options.items():
            if isinstance(value, bool):
                value = "true" if value else "false"
            lines.append(f"{key} = {value}")
        lines.append("")
    path.write_text("\n".join(lines))


def authtoken(user: str) -> dict:
    return {"www_authenticate_uri": KEYSTONE, "auth_url": KEYSTONE, "auth_type": "password",
            "username": user, "password": PASSWORD, "project_name": "service",
            "user_domain_name": "Default", "project_domain_name": "Default",
            "region_name": REGION, "service_token_roles_required": True,
            "memcached_servers": ""}


def creds(user: str) -> dict:
    return {"auth_type": "password", "auth_url": KEYSTONE, "username": user,
            "password": PASSWORD, "project_name": "service", "user_domain_name": "Default",
            "project_domain_name": "Default", "region_name": REGION}


def packaged_etc(service: str) -> Path:
    """The config files a service's wheel installs (paste, policy) under the venv's etc."""
    return VENV / "etc" / service


def write_configs() -> None:
    common = {"transport_url": TRANSPORT, "debug": False, "use_stderr": True}
    ini(ETC / "keystone" / "keystone.conf", {
        "DEFAULT": {"debug": False, "use_stderr": True},
        "database": {"connection": db_url("keystone")},
        "token": {"provider": "fernet"},
        "fernet_tokens": {"key_repository": ETC / "keystone" / "fernet-keys"},
        "fernet_receipts": {"key_repository": ETC / "keystone" / "fernet-keys"},
        "credential": {"key_repository": ETC / "keystone" / "credential-keys"},
    })
    ini(ETC / "placement" / "placement.conf", {
        "DEFAULT": {"debug": False, "use_stderr": True},
        "placement_database": {"connection": db_url("placement")},
        "api": {"auth_strategy": "keystone"},
        "keystone_authtoken": authtoken("placement"),
    })
    (ETC / "glance").mkdir(parents=True, exist_ok=True)
    for f in packaged_etc("glance").glob("glance-api-paste.ini"):
        shutil.copy(f, ETC / "glance" / f.name)
    ini(ETC / "glance" / "glance-api.conf", {
        "DEFAULT": {**common, "enabled_backends": "fs:file", "bind_host": "127.0.0.1",
                    "bind_port": PORTS["glance"], "workers": 1},
        "database": {"connection": db_url("glance")},
        "keystone_authtoken": authtoken("glance"),
        "paste_deploy": {"flavor": "keystone"},
        "glance_store": {"default_backend": "fs"},
        "fs": {"filesystem_store_datadir": CLOUD / "data" / "glance" / "images"},
        "os_glance_staging_store": {"filesystem_store_datadir":
                                    CLOUD / "data" / "glance" / "staging"},
        "os_glance_tasks_store": {"filesystem_store_datadir":
                                  CLOUD / "data" / "glance" / "tasks"},
        "oslo_concurrency": {"lock_path": CLOUD / "data" / "glance" / "locks"},
    })
    (ETC / "neutron").mkdir(parents=True, exist_ok=True)
    for f in packaged_etc("neutron").glob("api-paste.ini"):
        shutil.copy(f, ETC / "neutron" / f.name)
    ini(ETC / "neutron" / "neutron.conf", {
        "DEFAULT": {**common, "core_plugin": "ml2", "service_plugins": "",
                    "auth_strategy": "keystone", "api_workers": 1, "rpc_workers": 0,
                    "notify_nova_on_port_status_changes": False,
                    "notify_nova_on_port_data_changes": False,
                    "api_paste_config": ETC / "neutron" / "api-paste.ini"},
        "database": {"connection": db_url("neutron")},
        "keystone_authtoken": authtoken("neutron"),
        "oslo_concurrency": {"lock_path": CLOUD / "data" / "neutron" / "locks"},
        "nova": creds("nova"),
    })
    ini(ETC / "neutron" / "plugins" / "ml2" / "ml2_conf.ini", {
        "ml2": {"type_drivers": "flat,vlan", "tenant_network_types": "",
                "mechanism_drivers": "", "extension_drivers": "port_security"},
    })
    (ETC / "nova").mkdir(parents=True, exist_ok=True)
    for f in packaged_etc("nova").glob("api-paste.ini"):
        shutil.copy(f, ETC / "nova" / f.name)
    ini(ETC / "nova" / "nova.conf", {
        "DEFAULT": {**common, "state_path": CLOUD / "data" / "nova", "my_ip": "127.0.0.1",
                    "osapi_compute_workers": 1, "metadata_workers": 1,
                    "compute_driver": "libvirt.LibvirtDriver",
                    "instances_path": INSTANCES,
                    # Nova's default is 1 per compute: the rest are queued
                    "max_concurrent_live_migrations":
                        int(os.environ.get("SLM_CLOUD_NOVA_CONCURRENCY", "1"))},
        "wsgi": {"api_paste_config": ETC / "nova" / "api-paste.ini"},
        "api": {"auth_strategy": "keystone"},
        "api_database": {"connection": db_url("nova_api")},
        "database": {"connection": db_url("nova")},
        "conductor": {"workers": 1},
        "scheduler": {"workers": 1, "discover_hosts_in_cells_interval": -1},
        "keystone_authtoken": authtoken("nova"),
        "service_user": {**creds("nova"), "send_service_user_token": True},
        "placement": creds("placement") | {"username": "placement"},
        "neutron": creds("neutron") | {"username": "neutron"},
        "glance": {"region_name": REGION},
        "oslo_concurrency": {"lock_path": CLOUD / "data" / "nova" / "locks"},
        "notifications": {"notification_format": "both"},
        "oslo_messaging_notifications": {"driver": "messagingv2"},
        "workarounds": {"disable_rootwrap": True, "disable_deep_image_inspection": True},
        "vnc": {"enabled": False},
        "spice": {"enabled": False},
        "serial_console": {"enabled": False},
        "libvirt": {"virt_type": "qemu", "cpu_mode": "none",
                    "live_migration_scheme": "tcp", "live_migration_permit_post_copy": False},
        "os_vif_ovs": {"ovsdb_interface": "vsctl"},
    })
    for h in hosts():
        ini(h["dir"] / "nova-compute.conf", {
            "DEFAULT": {"host": h["name"], "my_ip": h["address"],
                        "state_path": h["dir"] / "state",
                        "instances_path": INSTANCES},
            "oslo_concurrency": {"lock_path": h["dir"] / "state" / "locks"},
            "libvirt": {"connection_uri":
                        f"qemu+unix:///system?socket={h['dir'] / 'run' / 'libvirt-sock'}",
                        "live_migration_inbound_addr": h["address"]},
        })
    # the privsep helpers are started through "sudo"; root needs none
    (CLOUD / "bin").mkdir(parents=True, exist_ok=True)
    sudo = CLOUD / "bin" / "sudo"
    sudo.write_text('#!/bin/sh\n# root already: run the command (nova privsep calls sudo)\n'
                    'while [ "${1#-}" != "$1" ]; do shift; done\nexec "$@"\n')
    sudo.chmod(0o755)
    clouds = {"clouds": {
        "slm-cloud": {"auth": {"auth_url": KEYSTONE, "username": "admin", "password": PASSWORD,
                               "project_name": "admin", "user_domain_name": "Default",
                               "project_domain_name": "Default"},
                      "region_name": REGION, "identity_api_version": 3},
    }}
    (CLOUD / "clouds.yaml").write_text(json.dumps(clouds, indent=1))


def svc_env(service: str) -> dict:
    return {f"OS_{service.upper()}_CONFIG_DIR": str(ETC / service)}


# -- one-time initialisation ----------------------------------------------------------------

def once(marker: str, func) -> None:
    DONE.mkdir(parents=True, exist_ok=True)
    if (DONE / marker).exists():
        return
    t0 = time.monotonic()
    func()
    (DONE / marker).write_text(time.strftime("%F %T\n"))
    log(f"{marker}: done in {time.monotonic() - t0:.1f} s")


def mysql(sql: str) -> None:
    run(["mysql", "-uroot", "-h127.0.0.1", "-e", sql], f"mysql: {sql}")


def init_backends() -> None:
    for name in DATABASES:
        mysql(f"CREATE DATABASE IF NOT EXISTS {PREFIX}{name} CHARACTER SET utf8")
    vhosts = run(["rabbitmqctl", "-q", "list_vhosts"], "rabbitmqctl list_vhosts").stdout.split()
    if VHOST not in vhosts:
        run(["rabbitmqctl", "add_vhost", VHOST], "rabbitmqctl add_vhost")
    run(["rabbitmqctl", "set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*"],
        "rabbitmqctl set_permissions")


def init_keystone() -> None:
    conf = ["--config-file", str(ETC / "keystone" / "keystone.conf")]
    run([str(BIN / "keystone-manage"), *conf, "db_sync"], "keystone db_sync")
    for what in ("fernet_setup", "credential_setup"):
        run([str(BIN / "keystone-manage"), *conf, what, "--keystone-user", "root",
             "--keystone-group", "root"], f"keystone {what}")
    run([str(BIN / "keystone-manage"), *conf, "bootstrap", "--bootstrap-password", PASSWORD,
         "--bootstrap-admin-url", KEYSTONE, "--bootstrap-public-url", KEYSTONE,
         "--bootstrap-internal-url", KEYSTONE, "--bootstrap-region-id", REGION],
        "keystone bootstrap")


def init_service_dbs() -> None:
    run([str(BIN / "placement-manage"), "--config-dir", str(ETC / "placement"), "db", "sync"],
        "placement db sync")
    run([str(BIN / "glance-manage"), "--config-dir", str(ETC / "glance"), "db_sync"],
        "glance db_sync")
    run([str(BIN / "neutron-db-manage"), "--config-file", str(ETC / "neutron" / "neutron.conf"),
         "--config-file", str(ETC / "neutron" / "plugins" / "ml2" / "ml2_conf.ini"),
         "upgrade", "heads"], "neutron-db-manage upgrade heads")
    nm = [str(BIN / "nova-manage"), "--config-file", str(ETC / "nova" / "nova.conf")]
    run([*nm, "api_db", "sync"], "nova-manage api_db sync")
    run([*nm, "cell_v2", "map_cell0", "--database_connection", db_url("nova_cell0")],
        "nova-manage cell_v2 map_cell0")
    cells = run([*nm, "cell_v2", "list_cells"], "nova-manage cell_v2 list_cells").stdout
    if " cell1 " not in cells:
        run([*nm, "cell_v2", "create_cell", "--name", "cell1"], "nova-manage create_cell")
    run([*nm, "db", "sync"], "nova-manage db sync")


def sdk():
    import openstack
    return openstack.connect(auth_url=KEYSTONE, username="admin", password=PASSWORD,
                             project_name="admin", user_domain_name="Default",
                             project_domain_name="Default", region_name=REGION,
                             identity_api_version="3")


def init_accounts() -> None:
    """Service project, users with admin and service roles, services and endpoints."""
    conn = sdk()
    ident = conn.identity
    project = ident.find_project("service") or ident.create_project(
        name="service", domain_id="default")
    roles = {r.name: r for r in ident.roles()}
    for name in ("service", "member", "reader"):
        if name not in roles:
            roles[name] = ident.create_role(name=name)
    admin_user = ident.find_user("admin")
    admin_project = ident.find_project("admin")
    for users_ in ("nova", "placement", "glance", "neutron", "slm"):
        user = ident.find_user(users_) or ident.create_user(
            name=users_, password=PASSWORD, domain_id="default", default_project_id=project.id)
        for role in ("admin", "service"):
            ident.assign_project_role_to_user(project, user, roles[role])
    ident.assign_project_role_to_user(admin_project, admin_user, roles["service"])
    for name, stype, url in SERVICES.values():
        register_endpoint(conn, name, stype, url, f"{name} of the slm test cloud")


def register_endpoint(conn, name: str, stype: str, url: str, description: str) -> None:
    ident = conn.identity
    service = next((s for s in ident.services() if s.type == stype), None)
    if service is None:
        service = ident.create_service(name=name, type=stype, description=description)
    have = {e.interface: e for e in ident.endpoints(service_id=service.id)}
    for interface in ("public", "internal", "admin"):
        if interface in have and have[interface].url != url:
            ident.delete_endpoint(have[interface])
            have.pop(interface)
        if interface not in have:
            ident.create_endpoint(service_id=service.id, interface=interface, url=url,
                                  region_id=REGION)


# -- the control plane ----------------------------------------------------------------------

def uwsgi(state: dict, name: str, module: str, port: int, env: dict, threads: int = 4,
          kind: str = "service") -> None:
    if running(state, name):
        return
    if port_taken(port):
        raise CloudError(f"127.0.0.1:{port}, the port of {name}, is taken by a process this "
                         "cloud did not record (another cloud, or one left from a lost state "
                         "file): stop it, or free the port")
    app = ["--wsgi-file", module] if module.endswith(".wsgi") else ["--module", module]
    argv = [str(BIN / "uwsgi"), "--http-socket", f"127.0.0.1:{port}", *app,
            "--processes", "1", "--threads", str(threads), "--enable-threads", "--need-app",
            "--die-on-term", "--buffer-size", "65535", "--add-header", "Connection: close"]
    spawn(state, name, argv, env, kind=kind)


def start_control(state: dict) -> None:
    uwsgi(state, "keystone", "keystone.wsgi.api:application", PORTS["keystone"],
          svc_env("keystone"))
    wait_http(state, "keystone", KEYSTONE)
    once("accounts", init_accounts)
    uwsgi(state, "placement", "placement.wsgi.api:application", PORTS["placement"],
          svc_env("placement"))
    uwsgi(state, "glance", "glance.wsgi.api:application", PORTS["glance"], svc_env("glance"))
    uwsgi(state, "neutron", "neutron.wsgi.api:application", PORTS["neutron"],
          svc_env("neutron"), threads=1)
    uwsgi(state, "nova-api", "nova.wsgi.osapi_compute:application", PORTS["nova"],
          svc_env("nova"))
    nova_conf = ["--config-file", str(ETC / "nova" / "nova.conf")]
    for daemon in ("nova-conductor", "nova-scheduler"):
        if not running(state, daemon):
            spawn(state, daemon, [str(BIN / daemon), *nova_conf])
    wait_http(state, "placement", f"http://127.0.0.1:{PORTS['placement']}/")
    wait_http(state, "glance", f"http://127.0.0.1:{PORTS['glance']}/")
    wait_http(state, "neutron", f"http://127.0.0.1:{PORTS['neutron']}/")
    wait_http(state, "nova-api", f"http://127.0.0.1:{PORTS['nova']}/")
    # a fresh Neutron worker answers its first GET /v2.0/ports with 500 (no agents,
    # port_forwardings); one listing of networks first avoids it
    conn = sdk()
    list(conn.network.networks())
    list(conn.network.ports())


# -- compute hosts --------------------------------------------------------------------------

def start_libvirtd(state: dict, h: dict) -> None:
    name = f"libvirtd-{h['name']}"
    if running(state, name):
        return
    d = h["dir"]
    for sub in PRIVATE:
        (d / sub).mkdir(parents=True, exist_ok=True)
    for target in PRIVATE.values():
        os.makedirs(target, exist_ok=True)  # mount points; stay empty outside the hosts
    (d / "state" / "locks").mkdir(parents=True, exist_ok=True)
    (d / "etc" / "libvirtd.conf").write_text(
        'auth_unix_rw = "none"\nauth_unix_ro = "none"\n'
        f'listen_tcp = 1\nlisten_tls = 0\nlisten_addr = "{h["address"]}"\nauth_tcp = "none"\n'
        f'host_uuid = "{uuidlib.uuid5(uuidlib.NAMESPACE_DNS, h["name"] + ".slm-cloud")}"\n'
        'log_outputs = "3:file:/var/log/libvirt/libvirtd.log"\n')
    lo, hi = h["ports"]
    (d / "etc" / "qemu.conf").write_text(
        'user = "root"\ngroup = "root"\nsecurity_driver = "none"\n'
        'cgroup_controllers = [ ]\nnamespaces = [ ]\nstdio_handler = "file"\n'
        f'migration_address = "{h["address"]}"\nmigration_host = "{h["address"]}"\n'
        f'migration_port_min = {lo}\nmigration_port_max = {hi}\n')
    binds = "; ".join(f"mount --bind {d / sub} {target}" for sub, target in PRIVATE.items())
    script = (f"set -e; {binds}; hostname {h['name']}; "
              "exec libvirtd --listen -p /run/libvirt/libvirtd.pid -f /etc/libvirt/libvirtd.conf")
    sock = d / "run" / "libvirt-sock"
    sock.unlink(missing_ok=True)
    spawn(state, name, ["unshare", "--mount", "--uts", "--propagation", "private",
                        "sh", "-c", script], kind="libvirtd")
    deadline = time.monotonic() + 60  # (a loaded machine: CI runs this beside other work)
    while not sock.exists():
        if not running(state, name):
            raise CloudError(f"{name} exited:\n{log_tail(name)}")
        if time.monotonic() > deadline:
            raise CloudError(f"{name} did not create {sock}:\n{log_tail(name)}")
        time.sleep(0.05)


def start_compute(state: dict, h: dict) -> None:
    name = f"nova-compute-{h['name']}"
    if running(state, name):
        return
    lpid = state["procs"][f"libvirtd-{h['name']}"]["pid"]
    spawn(state, name, ["nsenter", "-t", str(lpid), "-m", "-u", "--",
                        str(BIN / "nova-compute"),
                        "--config-file", str(ETC / "nova" / "nova.conf"),
                        "--config-file", str(h["dir"] / "nova-compute.conf")],
          kind="compute")


def wait_computes(state: dict, timeout: float = 400) -> None:
    conn = sdk()
    want = {h["name"] for h in hosts()}
    deadline = time.monotonic() + timeout
    while True:
        up = {s.host for s in conn.compute.services(binary="nova-compute")
              if s.state == "up"}
        if want <= up:
            break
        for h in hosts():
            if not running(state, f"nova-compute-{h['name']}"):
                raise CloudError(f"nova-compute of {h['name']} exited:\n"
                                 f"{log_tail('nova-compute-' + h['name'])}")
        if time.monotonic() > deadline:
            raise CloudError(f"compute services not up within {timeout:.0f} s: "
                             f"{sorted(want - up)}")
        time.sleep(1)
    run([str(BIN / "nova-manage"), "--config-file", str(ETC / "nova" / "nova.conf"),
         "cell_v2", "discover_hosts"], "nova-manage cell_v2 discover_hosts")
    while True:
        hyp = {x.name for x in conn.compute.hypervisors()}
        if want <= hyp:
            break
        if time.monotonic() > deadline:
            raise CloudError(f"hypervisors missing: {sorted(want - hyp)}")
        time.sleep(1)
    # availability zones: one aggregate per zone
    aggs = {a.name: a for a in conn.compute.aggregates()}
    for h in hosts():
        agg = aggs.get(h["zone"])
        if agg is None:
            agg = aggs[h["zone"]] = conn.compute.create_aggregate(
                name=h["zone"], availability_zone=h["zone"])
        agg = conn.compute.get_aggregate(agg.id)
        if h["name"] not in (agg.hosts or []):
            conn.compute.add_host_to_aggregate(agg, h["name"])


def record_privsep(state: dict) -> None:
    """The privsep daemons detach from nova-compute: find ours by their config files."""
    mine = str(CLOUD)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        text = b" ".join(cmd).decode(errors="replace")
        if "privsep-helper" in text and mine in text:
            pid = int(entry.name)
            key = f"privsep-{pid}"
            if key not in state["procs"]:
                state["procs"][key] = {"pid": pid, "start": proc_start_time(pid),
                                       "kind": "privsep", "argv": cmd[:3]}
    state["procs"] = {k: v for k, v in state["procs"].items()
                      if v.get("kind") != "privsep" or running(state, k)}
    for v in state["procs"].values():
        v["argv"] = [a.decode() if isinstance(a, bytes) else a for a in v["argv"]]
    save_state(state)


# -- images and flavor ----------------------------------------------------------------------

def init_images() -> None:
    """The e2e guest: kernel (aki), initramfs (ari) and an empty qcow2 disk per dirty rate."""
    conn = sdk()
    for f in ("vmlinuz", "initrd.gz"):
        if not (E2E / f).exists():
            raise CloudError(f"{E2E / f} is missing: run tools/e2e-setup.sh")
    kernel = conn.image.find_image("slm-e2e-kernel") or conn.image.create_image(
        name="slm-e2e-kernel", filename=str(E2E / "vmlinuz"), disk_format="aki",
        container_format="aki", visibility="public", wait=True)
    ramdisk = conn.image.find_image("slm-e2e-initrd") or conn.image.create_image(
        name="slm-e2e-initrd", filename=str(E2E / "initrd.gz"), disk_format="ari",
        container_format="ari", visibility="public", wait=True)
    disk = CLOUD / "data" / "disk.qcow2"
    disk.parent.mkdir(parents=True, exist_ok=True)
    if not disk.exists():
        run(["qemu-img", "create", "-f", "qcow2", str(disk), "16M"], "qemu-img create")
    for rate in (0, 4, 16):
        name = f"slm-e2e-dirty{rate}"
        if conn.image.find_image(name):
            continue
        cmdline = (f"console=ttyS0 quiet panic=0 slm_name={name} slm_rate={rate} "
                   "slm_wws=32 slm_reserve=4")
        conn.image.create_image(
            name=name, filename=str(disk), disk_format="qcow2", container_format="bare",
            visibility="public", wait=True, kernel_id=kernel.id, ramdisk_id=ramdisk.id,
            os_command_line=cmdline, hw_machine_type="pc")
    if not conn.compute.find_flavor("slm.tiny"):
        conn.compute.create_flavor(name="slm.tiny", ram=128, vcpus=1, disk=1)


# -- slm_plugin deployed on the cloud -------------------------------------------------------

SLM_ETC = ETC / "slm"


def slm_configs() -> None:
    """slm.conf of the controller and of each host's agent, by the devstack plugin's code."""
    SLM_ETC.mkdir(parents=True, exist_ok=True)
    env = {"SLM_CLOUD_VENV": str(VENV), "SLM_CLOUD_TRANSPORT": TRANSPORT,
           "SLM_CLOUD_DB": db_url("slm"), "SLM_CLOUD_KEYSTONE": KEYSTONE,
           "SLM_CLOUD_PASSWORD": PASSWORD, "SLM_CLOUD_PORT": str(PORTS["slm"]),
           "SLM_CLOUD_NOVA_CONF": str(ETC / "nova" / "nova.conf")}
    script = str(ROOT / "tools" / "cloud" / "slm-conf.sh")
    run([script, "controller", str(SLM_ETC / "slm.conf")], "slm.conf (devstack plugin)",
        extra_env=env)
    state = load_state()
    for h in hosts():  # inside the host's namespace: the plugin asks its libvirtd's versions
        lpid = state["procs"][f"libvirtd-{h['name']}"]["pid"]
        run(["nsenter", "-t", str(lpid), "-m", "-u", "--",
             script, "agent", str(SLM_ETC / f"agent-{h['name']}.conf"),
             str(h["dir"] / "nova-compute.conf")], f"slm agent conf of {h['name']}",
            extra_env=env)
    (SLM_ETC / "slm-api.wsgi").write_text(
        "from slm_plugin.api.wsgi import init_application\n"
        "application = init_application()\n")


def init_slm() -> None:
    run([str(BIN / "slm-manage"), "--config-file", str(SLM_ETC / "slm.conf"), "db", "upgrade"],
        "slm-manage db upgrade")
    register_endpoint(sdk(), "slm", "slm", f"http://127.0.0.1:{PORTS['slm']}/",
                      "Synchronized live migration of server groups")


def start_slm(state: dict) -> None:
    uwsgi(state, "slm-api", str(SLM_ETC / "slm-api.wsgi"), PORTS["slm"],
          {"SLM_CONFIG_FILES": str(SLM_ETC / "slm.conf")}, kind="slm")
    if not running(state, "slm-engine"):
        spawn(state, "slm-engine", [str(BIN / "slm-engine"), "--config-file",
                                    str(SLM_ETC / "slm.conf")], kind="slm")
    for h in hosts():
        name = f"slm-agent-{h['name']}"
        if running(state, name):
            continue
        lpid = state["procs"][f"libvirtd-{h['name']}"]["pid"]
        spawn(state, name, ["nsenter", "-t", str(lpid), "-m", "-u", "--",
                            str(BIN / "slm-agent"), "--config-file",
                            str(SLM_ETC / f"agent-{h['name']}.conf")], kind="slm")
    wait_http(state, "slm-api", f"http://127.0.0.1:{PORTS['slm']}/")
    time.sleep(2)
    for name in ["slm-engine"] + [f"slm-agent-{h['name']}" for h in hosts()]:
        if not running(state, name):
            raise CloudError(f"{name} exited:\n{log_tail(name)}")


# -- commands -------------------------------------------------------------------------------

def check_prereqs() -> None:
    problems = []
    if os.geteuid() != 0:
        problems.append("run as root (private libvirtd mounts)")
    for tool in ("libvirtd", "qemu-system-x86_64", "unshare", "nsenter", "mysql",
                 "rabbitmqctl", "qemu-img"):
        if shutil.which(tool) is None:
            problems.append(f"{tool} is not installed")
    for b in ("uwsgi", "keystone-manage", "nova-compute", "glance-manage", "neutron-db-manage",
              "placement-manage", "openstack"):
        if not (BIN / b).exists():
            problems.append(f"{BIN / b} missing: the virtualenv is incomplete (tools/cloud.sh "
                            "install)")
    if problems:
        raise CloudError("; ".join(problems))


def up(args) -> None:
    t0 = time.monotonic()
    check_prereqs()
    state = load_state()
    write_configs()
    once("backends", init_backends)
    once("keystone-db", init_keystone)
    once("service-dbs", init_service_dbs)
    log(f"databases ready ({time.monotonic() - t0:.1f} s)")
    start_control(state)
    log(f"control plane answering ({time.monotonic() - t0:.1f} s)")
    for h in hosts():
        start_libvirtd(state, h)
    for h in hosts():
        start_compute(state, h)
    wait_computes(state)
    record_privsep(state)
    log(f"{NHOSTS} compute hosts up in zones "
        f"{sorted({h['zone'] for h in hosts()})} ({time.monotonic() - t0:.1f} s)")
    once("images", init_images)
    if os.environ.get("SLM_CLOUD_SLM", "1") == "1":
        slm_configs()
        once("slm", init_slm)
        start_slm(state)
        log(f"slm-api, slm-engine and {NHOSTS} slm-agents running ({time.monotonic() - t0:.1f} s)")
    log(f"cloud up in {time.monotonic() - t0:.1f} s; "
        f"export OS_CLIENT_CONFIG_FILE={CLOUD / 'clouds.yaml'} OS_CLOUD=slm-cloud")


def destroy_guests(h: dict) -> None:
    sock = h["dir"] / "run" / "libvirt-sock"
    if sock.exists():
        try:
            import libvirt
            conn = libvirt.open(f"qemu+unix:///system?socket={sock}")
            for dom in conn.listAllDomains():
                try:
                    dom.destroy()
                except libvirt.libvirtError:
                    pass
            conn.close()
        except Exception as exc:  # the daemon may be gone already
            log(f"{h['name']}: could not destroy guests through libvirt: {exc}")
    for pidfile in (h["dir"] / "run" / "qemu").glob("*.pid"):
        if pidfile.name == "driver.pid":  # the QEMU driver's lock: libvirtd's own PID
            continue
        try:
            pid = int(pidfile.read_text().strip())
        except (OSError, ValueError):
            continue
        if alive(pid):
            kill_pid(pid, 5)


def stop(args) -> None:
    """Stop every recorded process by its PID, one kind at a time, each kind at once."""
    state = load_state()
    if state["procs"]:
        record_privsep(state)
    failures = []
    for kind in ["slm", "service", "compute", "privsep", "libvirtd"]:
        names = [n for n, r in state["procs"].items() if r.get("kind", "service") == kind]
        if kind == "libvirtd":
            for h in hosts():
                destroy_guests(h)
        live = [n for n in names if running(state, n)]
        for n in names:
            if n not in live:
                log(f"{n} (pid {state['procs'][n]['pid']}) was not running")
        for n in live:
            try:
                os.kill(state["procs"][n]["pid"], signal.SIGTERM)
            except ProcessLookupError:
                pass
        grace = time.monotonic() + (3 if kind in ("compute", "privsep") else 8)
        while time.monotonic() < grace and any(alive(state["procs"][n]["pid"]) for n in live):
            time.sleep(0.1)
        for n in live:
            pid = state["procs"][n]["pid"]
            if alive(pid):
                kill_pid(pid, 0)  # SIGKILL: nova-compute ignores SIGTERM for 15 s and more
            if alive(pid):
                failures.append(f"{n} (pid {pid})")
                continue
            log(f"stopped {n} (pid {pid})")
        for n in names:
            if n not in [f.split(" ")[0] for f in failures]:
                del state["procs"][n]
        save_state(state)
    if failures:
        raise CloudError(f"still running: {', '.join(failures)}")


def down(args) -> None:
    stop(args)
    if not args.keep_data:
        for name in DATABASES:
            mysql(f"DROP DATABASE IF EXISTS {PREFIX}{name}")
        vhosts = run(["rabbitmqctl", "-q", "list_vhosts"], "list_vhosts", check=False).stdout
        if VHOST in vhosts.split():
            run(["rabbitmqctl", "delete_vhost", VHOST], "rabbitmqctl delete_vhost")
        for sub in ("done", "data", "hosts", "etc"):
            shutil.rmtree(CLOUD / sub, ignore_errors=True)
        STATE.unlink(missing_ok=True)
        log("databases, vhost and cloud state removed (the virtualenv stays)")


def status(args) -> int:
    state = load_state()
    bad = 0
    for name, rec in sorted(state["procs"].items()):
        ok = running(state, name)
        bad += not ok
        print(f"{name:28} pid {rec['pid']:>7}  {'running' if ok else 'GONE'}")
    for svc, port in PORTS.items():
        if svc == "slm" and "slm-api" not in state["procs"]:
            continue
        answers = http_ok(f"http://127.0.0.1:{port}/")
        print(f"{svc:28} 127.0.0.1:{port:<6} {'answers' if answers else 'NO ANSWER'}")
    if not state["procs"]:
        print("no cloud running")
        return 1
    return 1 if bad else 0


def main() -> int:
    p = argparse.ArgumentParser(prog="tools/cloud.sh")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("up")
    sub.add_parser("stop")
    d = sub.add_parser("down")
    d.add_argument("--keep-data", action="store_true")
    sub.add_parser("status")
    args = p.parse_args()
    try:
        if args.cmd == "up":
            up(args)
        elif args.cmd == "stop":
            stop(args)
        elif args.cmd == "down":
            down(args)
        elif args.cmd == "status":
            return status(args)
    except CloudError as exc:
        log(f"FAILED: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
