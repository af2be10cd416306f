"""Move a server group between the real cloud's zones with slm_plugin, as an operator would
(`openstack server group migrate G --to-az Z --wait`), and measure it from libvirt's events.

    eval "$(tools/cloud.sh env)"
    python tools/cloud/group_run.py [--policy anti-affinity] [--rates 0,16]
        [--strategies synchronized,parallel] [--rounds 1] [--out FILE]

Boots one member per dirty rate (the e2e guest's images slm-e2e-dirty<rate>) in az1, then
for each round and strategy migrates the group to the other zone (az1 -> az2 -> az1 ...).
Per migration it prints one JSON line: each member's switchover instant (libvirt's
"resumed (migrated)" event on the destination, seconds after the CLI call), downtime and
bytes (libvirt's job-completed statistics), the group's real split, and what SLM reports
(`server group migration show`), plus whether every heartbeat continued.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import realcloud  # noqa: E402

AZ1 = ["cloud-h1", "cloud-h2"]


def cli(*args, timeout=900):
    proc = subprocess.run(["openstack", *args], capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"openstack {' '.join(args)}: exit {proc.returncode}\n"
                           f"{proc.stderr}{proc.stdout}")
    return proc.stdout


def cli_json(*args, timeout=900):
    return json.loads(cli(*args, "-f", "json", timeout=timeout))


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--policy", default="anti-affinity")
    p.add_argument("--rates", default="0,16")
    p.add_argument("--strategies", default="synchronized,parallel")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--out", default=str(realcloud.ROOT / ".cloud" / "group_runs.jsonl"))
    p.add_argument("--keep", action="store_true")
    p.add_argument("--sample", action="store_true",
                   help="sample each libvirt job's remaining memory, max speed and max "
                   "downtime every 0.25 s (kept in the record)")
    args = p.parse_args()
    api = realcloud.Compute()
    rates = [int(r) for r in args.rates.split(",")]
    stamp = int(time.time())
    gname = f"grp-{stamp}"
    group = cli_json("server", "group", "create", "--policy", args.policy, gname)
    gid = group["id"]
    sids = {}
    ok = True
    out = open(args.out, "a")
    try:
        for i, rate in enumerate(rates):
            sids[f"m{i}-d{rate}"] = api.boot(f"{gname}-m{i}-d{rate}", f"slm-e2e-dirty{rate}",
                                             host=AZ1[i % len(AZ1)], group=gid)
        for sid in sids.values():
            api.wait_status(sid)
        beats = {n: api.wait_heartbeat(s, timeout=240) for n, s in sids.items()}
        zone = "az1"
        for _ in range(args.rounds):
            for strategy in args.strategies.split(","):
                target = "az2" if zone == "az1" else "az1"
                before_hosts = {n: api.host_of(s) for n, s in sids.items()}
                beats = {n: api.wait_heartbeat(s, after=beats[n][0]) for n, s in sids.items()}
                watch = realcloud.LibvirtWatch(realcloud.cloud_sockets())
                sampler = (realcloud.JobSampler(realcloud.cloud_sockets(), sids.values())
                           if args.sample else None)
                t_call = time.time()
                try:
                    job = cli_json("server", "group", "migrate", gname, "--to-az", target,
                                   "--strategy", strategy, "--wait")
                    t_done = time.time()
                    time.sleep(1.5)
                    lv = {n: watch.switchover(s) for n, s in sids.items()}
                finally:
                    watch.close()
                    if sampler:
                        sampler.close()
                show = cli_json("server", "group", "migration", "show", job["id"])
                after_hosts = {n: api.host_of(s) for n, s in sids.items()}
                statuses = {n: api.server(s)["status"] for n, s in sids.items()}
                after = {}
                for n, s in sids.items():
                    try:
                        after[n] = api.wait_heartbeat(s, after=beats[n][0] + 1, timeout=60)
                    except RuntimeError as exc:
                        after[n] = str(exc)[:200]
                migs = {n: len([m for m in api.migrations(s)]) for n, s in sids.items()}
                resumed = [v["resumed_at"] for v in lv.values() if v.get("resumed_at")]
                rec = {
                    "when": time.strftime("%F %T"), "strategy": strategy, "policy": args.policy,
                    "from": zone, "to": target, "job": job["id"], "job_status": show["status"],
                    "cli_wait_s": round(t_done - t_call, 2),
                    "real_split_s": round(max(resumed) - min(resumed), 3)
                    if len(resumed) == len(sids) else None,
                    "slm_switchover": show.get("switchover"),
                    "members": {n: {
                        "rate_mibps": int(n.split("-d")[1]),
                        "from": before_hosts[n], "to": after_hosts[n], "status": statuses[n],
                        "switchover_s": round(v["resumed_at"] - t_call, 3)
                        if v.get("resumed_at") else None,
                        "incoming_s": round(v["incoming_at"] - t_call, 3)
                        if v.get("incoming_at") else None,
                        "downtime_ms": v.get("downtime_ms"),
                        "libvirt_job_s": round(v["time_elapsed_ms"] / 1000, 2)
                        if v.get("time_elapsed_ms") else None,
                        "memory_MB": round(v["memory_bytes"] / 1e6, 1)
                        if v.get("memory_bytes") else None,
                        "heartbeat_after": after[n], "live_migrations_so_far": migs[n],
                    } for n, v in lv.items()},
                    "slm_members": show.get("members"),
                }
                if sampler:  # the libvirt job's settings over time, per member
                    names = {s: n for n, s in sids.items()}
                    rec["samples"] = [{**{k: v for k, v in x.items() if k != "uuid"},
                                       "t": round(x["t"] - t_call, 2),
                                       "member": names[x["uuid"]]} for x in sampler.samples]
                good = (show["status"] == "completed"
                        and all(isinstance(a, (list, tuple)) and a[2] == 0 for a in after.values())
                        and all(s == "ACTIVE" for s in statuses.values()))
                hosts_z = set(after_hosts.values())
                rec["ok"] = good and len(hosts_z) == len(sids)
                ok &= rec["ok"]
                print(json.dumps(rec), flush=True)
                out.write(json.dumps(rec) + "\n")
                out.flush()
                beats = {n: a if isinstance(a, (list, tuple)) else beats[n]
                         for n, a in after.items()}
                zone = target
    finally:
        out.close()
        if not args.keep:
            for sid in sids.values():
                try:
                    api.delete(f"/servers/{sid}")
                except Exception as exc:
                    print(f"delete {sid}: {exc}", file=sys.stderr)
            time.sleep(3)
            subprocess.run(["openstack", "server", "group", "delete", gid],
                           capture_output=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
