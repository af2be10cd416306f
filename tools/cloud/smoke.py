"""Boot the e2e guest on the real cloud, live-migrate it through the Compute API (post-copy
off, Nova's defaults otherwise) and check that its heartbeat continues on the destination.

    eval "$(tools/cloud.sh env)"; python tools/cloud/smoke.py [--image slm-e2e-dirty16]
        [--source cloud-h1] [--dest cloud-h2] [--runs 1] [--keep]

Prints one JSON line per migration: Nova's timings and libvirt's (events, job statistics).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import realcloud  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--image", default="slm-e2e-dirty16")
    p.add_argument("--source", default="cloud-h1")
    p.add_argument("--dest", default="cloud-h2")
    p.add_argument("--runs", type=int, default=1, help="migrations back and forth")
    p.add_argument("--keep", action="store_true", help="leave the server running")
    args = p.parse_args()
    api = realcloud.Compute()
    watch = realcloud.LibvirtWatch(realcloud.cloud_sockets())
    t0 = time.monotonic()
    sid = api.boot(f"smoke-{int(time.time())}", args.image, host=args.source)
    ok = True
    try:
        api.wait_status(sid)
        t_active = time.monotonic() - t0
        hb = api.wait_heartbeat(sid, timeout=180)
        t_hb = time.monotonic() - t0
        print(json.dumps({"server": sid, "active_s": round(t_active, 1),
                          "first_heartbeat_s": round(t_hb, 1), "heartbeat": hb}), flush=True)
        hosts = [args.source, args.dest]
        for i in range(args.runs):
            src, dst = hosts[i % 2], hosts[(i + 1) % 2]
            before = api.wait_heartbeat(sid, after=hb[0])
            t_call = time.time()
            api.live_migrate(sid, dst)
            deadline = time.monotonic() + 300
            while True:
                migs = api.migrations(sid)
                last = max(migs, key=lambda m: m["id"]) if migs else None
                if last and last["status"] in ("completed", "error", "failed", "cancelled"):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"migration still {last and last['status']} after 300 s")
                time.sleep(0.5)
            t_done = time.time()
            server = api.wait_status(sid, ("ACTIVE", "ERROR"))
            host = server.get("OS-EXT-SRV-ATTR:host")
            time.sleep(1.0)  # the job-completed event
            lv = watch.switchover(sid)
            after = api.wait_heartbeat(sid, after=before[0] + 1, timeout=60)
            rec = {"run": i + 1, "from": src, "to": dst, "nova_status": last["status"],
                   "server_status": server["status"], "host": host,
                   "api_to_done_s": round(t_done - t_call, 2),
                   "api_to_resume_s": round(lv["resumed_at"] - t_call, 2)
                   if lv.get("resumed_at") else None,
                   "downtime_ms": lv.get("downtime_ms"),
                   "libvirt_job_ms": lv.get("time_elapsed_ms"),
                   "memory_MB": round(lv["memory_bytes"] / 1e6, 1) if lv.get("memory_bytes")
                   else None,
                   "disk_MB": round(lv["disk_bytes"] / 1e6, 1) if lv.get("disk_bytes")
                   else None,
                   "heartbeat_before": before, "heartbeat_after": after,
                   "corrupt": after[2]}
            ok &= (last["status"] == "completed" and host == dst and server["status"] ==
                   "ACTIVE" and after[2] == 0)
            print(json.dumps(rec), flush=True)
            hb = after
    finally:
        watch.close()
        if not args.keep:
            api.delete(f"/servers/{sid}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
