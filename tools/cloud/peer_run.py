"""The same group on the same host evacuated two ways, side by side, on the real cloud:

1. ``nova host-evacuate-live cloud-h1`` (python-novaclient: what Nova users do today);
2. SLM's maintenance hook: ``openstack compute service set --disable --disable-reason
   "maintenance ..." cloud-h1 nova-compute``, which makes slm-engine move the host's groups
   to ``[maintenance] target_availability_zone`` (az2).

A soft-anti-affinity group of two (one idle, one dirtying 16 MiB/s) is booted on cloud-h1;
between the two runs the members are live-migrated back to cloud-h1. For each run: every
member's switchover (libvirt's resume on the destination, seconds after the command),
downtime and memory bytes (libvirt's job statistics), the split and the makespan.

    eval "$(tools/cloud.sh env)"; python tools/cloud/peer_run.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import realcloud  # noqa: E402
from group_run import cli, cli_json  # noqa: E402

HOST = "cloud-h1"
OUT = realcloud.ROOT / ".cloud" / "peer_runs.jsonl"


def nova_env():
    env = dict(os.environ)
    env.update({"OS_AUTH_URL": "http://127.0.0.1:15000/v3", "OS_USERNAME": "admin",
                "OS_PASSWORD": "slmcloud", "OS_PROJECT_NAME": "admin",
                "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default",
                "OS_COMPUTE_API_VERSION": "2.80"})
    env.pop("OS_CLOUD", None)
    return env


def wait_done(api, sids, moved_from, timeout=600):
    """Until every server is ACTIVE on a host other than moved_from with no migration
    in progress."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = [api.server(s) for s in sids]
        if all(s["status"] == "ACTIVE" and s["OS-EXT-SRV-ATTR:host"] != moved_from
               for s in states):
            return time.time()
        if any(s["status"] == "ERROR" for s in states):
            raise RuntimeError(f"a server is in ERROR: {[s.get('fault') for s in states]}")
        time.sleep(0.5)
    raise RuntimeError("servers not moved in time")


def measure(api, sids, label, start_cmd, extra=None):
    beats = {s: api.wait_heartbeat(s) for s in sids}
    watch = realcloud.LibvirtWatch(realcloud.cloud_sockets())
    t0 = time.time()
    try:
        start_cmd()
        t_end = wait_done(api, sids, HOST)
        time.sleep(1.5)
        lv = {s: watch.switchover(s) for s in sids}
    finally:
        watch.close()
    resumed = [v["resumed_at"] for v in lv.values() if v.get("resumed_at")]
    rec = {"run": label, "when": time.strftime("%F %T"),
           "split_s": round(max(resumed) - min(resumed), 3) if len(resumed) == len(sids)
           else None,
           "makespan_s": round(max(resumed) - t0, 2) if resumed else None,
           "all_active_s": round(t_end - t0, 2),
           "members": {api.server(s)["name"]: {
               "to": api.host_of(s),
               "switchover_s": round(v["resumed_at"] - t0, 2) if v.get("resumed_at") else None,
               "downtime_ms": v.get("downtime_ms"),
               "libvirt_job_s": round(v["time_elapsed_ms"] / 1000, 2)
               if v.get("time_elapsed_ms") else None,
               "memory_MB": round(v["memory_bytes"] / 1e6, 1) if v.get("memory_bytes") else None,
               "heartbeat_after": api.wait_heartbeat(s, after=beats[s][0] + 1, timeout=60),
           } for s, v in lv.items()}}
    rec.update(extra or {})
    print(json.dumps(rec), flush=True)
    with open(OUT, "a") as f:
        f.write(json.dumps(rec) + "\n")
    return rec


def main() -> int:
    api = realcloud.Compute()
    name = f"peer-{int(time.time())}"
    gid = cli_json("server", "group", "create", "--policy", "soft-anti-affinity", name)["id"]
    sids = []
    try:
        for rate in (0, 16):
            sids.append(api.boot(f"{name}-d{rate}", f"slm-e2e-dirty{rate}", host=HOST,
                                 group=gid))
        for s in sids:
            api.wait_status(s)
        assert {api.host_of(s) for s in sids} == {HOST}

        def novaclient():
            subprocess.run(["nova", "host-evacuate-live", "--strict", HOST], env=nova_env(),
                           check=True, capture_output=True, text=True)
        measure(api, sids, "nova host-evacuate-live", novaclient)

        for s in sids:  # back to the host, one at a time
            api.live_migrate(s, HOST)
            deadline = time.monotonic() + 300
            while api.host_of(s) != HOST or api.server(s)["status"] != "ACTIVE":
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{s} not back on {HOST}")
                time.sleep(1)
        jobs_before = {r["ID"] for r in cli_json("server", "group", "migration", "list")}

        def maintenance():
            cli("compute", "service", "set", "--disable", "--disable-reason",
                "maintenance: peer_run", HOST, "nova-compute")
        try:
            measure(api, sids, "slm maintenance hook", maintenance)
            jobs = [r for r in cli_json("server", "group", "migration", "list")
                    if r["ID"] not in jobs_before]
            for j in jobs:
                show = cli_json("server", "group", "migration", "show", j["ID"])
                print(json.dumps({"slm_job": j["ID"], "status": show["status"],
                                  "strategy": show.get("strategy"),
                                  "slm_switchover": show.get("switchover")}), flush=True)
        finally:
            cli("compute", "service", "set", "--enable", HOST, "nova-compute")
    finally:
        for s in sids:
            api.delete(f"/servers/{s}")
        time.sleep(3)
        subprocess.run(["openstack", "server", "group", "delete", gid], capture_output=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
