"""Helpers for the real cloud of tools/cloud.sh: the Compute API, guests' heartbeats, and
what each host's libvirtd says about migrations (lifecycle and job-completed events).

Used by tools/cloud/smoke.py, tools/cloud/group_run.py and tests/integration.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEARTBEAT = re.compile(r"hb (\S+) (\d+) (\d+) (\d+)")
MICROVERSION = "2.80"


def connect():
    import openstack
    return openstack.connect(cloud="slm-cloud")


class Compute:
    """The Compute API at one microversion, through keystoneauth's adapter."""

    def __init__(self, conn=None):
        self.conn = conn or connect()
        self.api = self.conn.compute

    def _ok(self, resp, what):
        if resp.status_code >= 400:
            raise RuntimeError(f"{what}: HTTP {resp.status_code} {resp.text[:500]}")
        return resp.json() if resp.content else {}

    def get(self, path, mv=MICROVERSION):
        return self._ok(self.api.get(path, microversion=mv), f"GET {path}")

    def post(self, path, body, mv=MICROVERSION):
        return self._ok(self.api.post(path, json=body, microversion=mv), f"POST {path}")

    def delete(self, path, mv=MICROVERSION):
        resp = self.api.delete(path, microversion=mv)
        if resp.status_code >= 400 and resp.status_code != 404:
            raise RuntimeError(f"DELETE {path}: HTTP {resp.status_code} {resp.text[:300]}")

    def image_id(self, name):
        return self.conn.image.find_image(name, ignore_missing=False).id

    def flavor_id(self, name="slm.tiny"):
        return self.conn.compute.find_flavor(name, ignore_missing=False).id

    def boot(self, name, image, host=None, zone=None, group=None, flavor="slm.tiny"):
        server = {"name": name, "imageRef": self.image_id(image),
                  "flavorRef": self.flavor_id(flavor), "networks": "none"}
        if host:
            # 2.74's "host" goes through the scheduler and pins no zone: a server booted
            # with an availability zone is never moved to another one by Nova (SLM refuses)
            server["host"] = host
        elif zone:
            server["availability_zone"] = zone
        body = {"server": server}
        if group:
            body["os:scheduler_hints"] = {"group": group}
        return self.post("/servers", body)["server"]["id"]

    def server(self, sid):
        return self.get(f"/servers/{sid}")["server"]

    def wait_status(self, sid, statuses=("ACTIVE",), timeout=180):
        deadline = time.monotonic() + timeout
        while True:
            s = self.server(sid)
            if s["status"] in statuses:
                return s
            if s["status"] == "ERROR" or time.monotonic() > deadline:
                raise RuntimeError(f"server {sid} is {s['status']}: {s.get('fault')}")
            time.sleep(1)

    def console(self, sid, length=40):
        out = self.post(f"/servers/{sid}/action", {"os-getConsoleOutput": {"length": length}})
        return out.get("output", "")

    def heartbeat(self, sid):
        """(seconds, writes, corrupt) of the last heartbeat on the console, or None."""
        beats = HEARTBEAT.findall(self.console(sid))
        if not beats:
            return None
        _, secs, writes, corrupt = beats[-1]
        return int(secs), int(writes), int(corrupt)

    def wait_heartbeat(self, sid, after=-1, timeout=120):
        deadline = time.monotonic() + timeout
        while True:
            hb = self.heartbeat(sid)
            if hb and hb[0] > after:
                return hb
            if time.monotonic() > deadline:
                raise RuntimeError(f"no heartbeat after {after} from {sid} within {timeout} s:"
                                   f"\n{self.console(sid)[-800:]}")
            time.sleep(1)

    def live_migrate(self, sid, host=None):
        self.post(f"/servers/{sid}/action",
                  {"os-migrateLive": {"host": host, "block_migration": "auto"}})

    def migrations(self, sid):
        return self.get(f"/os-migrations?instance_uuid={sid}&migration_type=live-migration")[
            "migrations"]

    def host_of(self, sid):
        return self.server(sid).get("OS-EXT-SRV-ATTR:host")


# -- libvirt events -------------------------------------------------------------------------

@dataclass
class Event:
    t: float          # time.time()
    host: str
    domain: str       # UUID
    kind: str         # lifecycle name or "job-completed"
    detail: str = ""
    stats: dict = field(default_factory=dict)


_LOOP = None


def _event_loop():
    global _LOOP
    import libvirt
    if _LOOP is None:
        libvirt.virEventRegisterDefaultImpl()

        def loop():
            while True:
                libvirt.virEventRunDefaultImpl()
        _LOOP = threading.Thread(target=loop, daemon=True, name="libvirt-events")
        _LOOP.start()


LIFECYCLE = {0: "defined", 1: "undefined", 2: "started", 3: "suspended", 4: "resumed",
             5: "stopped", 6: "shutdown", 7: "pmsuspended", 8: "crashed"}
DETAIL = {(2, 1): "migrated", (3, 1): "migrated", (3, 7): "postcopy", (4, 1): "migrated",
          (4, 3): "postcopy", (5, 3): "migrated", (3, 0): "paused", (4, 0): "unpaused",
          (2, 0): "booted", (5, 0): "shutdown", (5, 1): "destroyed"}


class LibvirtWatch:
    """Lifecycle and job-completed events of every host's libvirtd, by the host's socket."""

    def __init__(self, sockets: dict[str, Path]):
        import libvirt
        _event_loop()
        self.events: list[Event] = []
        self.lock = threading.Lock()
        self.conns = {}
        for host, sock in sockets.items():
            conn = libvirt.open(f"qemu+unix:///system?socket={sock}")
            conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                        self._lifecycle, host)
            conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_JOB_COMPLETED,
                                        self._job, host)
            self.conns[host] = conn

    def _lifecycle(self, conn, dom, event, detail, host):
        with self.lock:
            self.events.append(Event(time.time(), host, dom.UUIDString(),
                                     LIFECYCLE.get(event, str(event)),
                                     DETAIL.get((event, detail), str(detail))))

    def _job(self, conn, dom, stats, host):
        with self.lock:
            self.events.append(Event(time.time(), host, dom.UUIDString(), "job-completed",
                                     stats=dict(stats)))

    def close(self):
        for conn in self.conns.values():
            try:
                conn.close()
            except Exception:
                pass

    def of(self, uuid):
        with self.lock:
            return [e for e in self.events if e.domain == uuid]

    def switchover(self, uuid):
        """What libvirt says about one migration of uuid: resume instant at the destination,
        pause instant at the source, downtime, bytes (from the job-completed statistics)."""
        evs = self.of(uuid)
        resumed = [e for e in evs if e.kind == "resumed" and e.detail in ("migrated",
                                                                           "postcopy")]
        paused = [e for e in evs if e.kind == "suspended" and e.detail in ("migrated",
                                                                            "postcopy",
                                                                            "paused")]
        started = [e for e in evs if e.kind == "started" and e.detail == "migrated"]
        done = [e for e in evs if e.kind == "job-completed" and e.stats.get("downtime")
                is not None]
        out = {"resumed_at": resumed[-1].t if resumed else None,
               "resumed_on": resumed[-1].host if resumed else None,
               "paused_at": paused[-1].t if paused else None,
               "incoming_at": started[0].t if started else None}
        if done:
            s = done[-1].stats
            out.update({"downtime_ms": s.get("downtime"),
                        "time_elapsed_ms": s.get("time_elapsed"),
                        "memory_bytes": s.get("memory_processed"),
                        "disk_bytes": s.get("disk_processed"),
                        "data_bytes": s.get("data_processed"),
                        "stats_from": done[-1].host})
        return out


def cloud_sockets(cloud_dir: Path | None = None) -> dict[str, Path]:
    base = (cloud_dir or ROOT / ".cloud") / "hosts"
    return {d.name: d / "run" / "libvirt-sock" for d in sorted(base.iterdir())
            if (d / "run" / "libvirt-sock").exists()}


class JobSampler:
    """Every `period` s, for each watched server on each host: the libvirt job's memory
    remaining, the domain's max speed and max downtime (what Nova and slm-agent set)."""

    def __init__(self, sockets: dict[str, Path], uuids, period: float = 0.25):
        import libvirt
        self.libvirt = libvirt
        self.conns = {h: libvirt.open(f"qemu+unix:///system?socket={s}")
                      for h, s in sockets.items()}
        self.uuids = list(uuids)
        self.period = period
        self.samples: list[dict] = []
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="job-sampler")
        self.thread.start()

    def _sample(self, host, conn, uuid):
        lv = self.libvirt
        try:
            dom = conn.lookupByUUIDString(uuid)
            if not dom.isActive():
                return None
            stats = dom.jobStats()
            if stats.get("type", 0) == lv.VIR_DOMAIN_JOB_NONE:
                return None
            out = {"t": time.time(), "host": host, "uuid": uuid,
                   "remaining_MiB": round(stats.get("memory_remaining", 0) / 2**20, 1),
                   "processed_MiB": round(stats.get("memory_processed", 0) / 2**20, 1),
                   "iteration": stats.get("memory_iteration"),
                   "bps_MiB": round(stats.get("memory_bps", 0) / 2**20, 1),
                   "disk_processed_MiB": round(stats.get("disk_processed", 0) / 2**20, 2),
                   "disk_remaining_MiB": round(stats.get("disk_remaining", 0) / 2**20, 2),
                   "disk_total_MiB": round(stats.get("disk_total", 0) / 2**20, 2)}
            try:
                out["max_speed_MiBps"] = dom.migrateGetMaxSpeed(0)
            except lv.libvirtError:
                out["max_speed_MiBps"] = None
            try:
                out["max_downtime_ms"] = dom.migrateGetMaxDowntime(0)
            except lv.libvirtError:
                out["max_downtime_ms"] = None
            return out
        except lv.libvirtError:
            return None

    def _run(self):
        while not self.stop_event.is_set():
            for host, conn in self.conns.items():
                for uuid in self.uuids:
                    s = self._sample(host, conn, uuid)
                    if s:
                        self.samples.append(s)
            self.stop_event.wait(self.period)

    def close(self):
        self.stop_event.set()
        self.thread.join(5)
        for conn in self.conns.values():
            try:
                conn.close()
            except Exception:
                pass
