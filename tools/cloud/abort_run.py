"""Abort a group migration through the CLI on the real cloud and record what follows:
what the CLI says, each server's status and host for 15 s after, Nova's migration records,
what SLM reports (members' states).

    eval "$(tools/cloud.sh env)"; python tools/cloud/abort_run.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import realcloud  # noqa: E402
from group_run import AZ1, cli, cli_json  # noqa: E402


def main() -> int:
    api = realcloud.Compute()
    name = f"abort-{int(time.time())}"
    gid = cli_json("server", "group", "create", "--policy", "anti-affinity", name)["id"]
    sids = []
    try:
        for i, rate in enumerate((16, 16)):
            sids.append(api.boot(f"{name}-m{i}-d{rate}", f"slm-e2e-dirty{rate}", host=AZ1[i],
                                 group=gid))
        for s in sids:
            api.wait_status(s)
        for s in sids:
            api.wait_heartbeat(s, timeout=240)
        job = cli_json("server", "group", "migrate", name, "--to-az", "az2",
                       "--strategy", "synchronized")
        t0 = time.time()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # until Nova runs both migrations
            migs = [max(api.migrations(s), key=lambda m: m["id"], default={}) for s in sids]
            if all(m.get("status") == "running" for m in migs):
                break
            time.sleep(0.3)
        t_abort = time.time()
        proc = subprocess.run(["openstack", "server", "group", "migration", "abort",
                               job["id"]], capture_output=True, text=True)
        print(json.dumps({"abort_after_s": round(t_abort - t0, 1), "rc": proc.returncode,
                          "cli_says": (proc.stdout + proc.stderr).strip()[:500]}), flush=True)
        timeline = []
        for _ in range(30):
            timeline.append({"t": round(time.time() - t_abort, 1),
                             **{api.server(s)["name"][-5:]:
                                f"{api.server(s)['status']}@{api.host_of(s)}" for s in sids}})
            time.sleep(0.5)
        print(json.dumps({"after_abort": timeline[::4]}), flush=True)
        show = cli_json("server", "group", "migration", "show", job["id"])
        print(json.dumps({"slm_status": show["status"],
                          "slm_members": [(m["name"][-5:], m["state"]) for m in
                                          show.get("members") or []],
                          "nova_migrations": [[(m["id"], m["status"]) for m in
                                               api.migrations(s)] for s in sids],
                          "servers": [(api.server(s)["status"], api.host_of(s),
                                       (api.server(s).get("fault") or {}).get("message"))
                                      for s in sids]}), flush=True)
        events = cli_json("server", "group", "migration", "event", "list", job["id"])
        print(json.dumps({"events": [(e.get("Type") or e.get("type"),
                                      str(e.get("Detail") or e.get("detail"))[:160])
                                     for e in events][-8:]}), flush=True)
    finally:
        for s in sids:
            if api.server(s)["status"] == "ERROR":
                try:
                    cli("server", "set", "--state", "active", s)
                except RuntimeError:
                    pass
            api.delete(f"/servers/{s}")
        time.sleep(3)
        subprocess.run(["openstack", "server", "group", "delete", gid], capture_output=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
