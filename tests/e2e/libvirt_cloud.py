"""A Cloud over libvirt directly: the same control loop and planners drive real QEMU.

What Nova does for a live migration (a peer-to-peer ``migrateToURI3`` from the
source host's libvirtd to the destination's) this class does itself, one thread
per migration; what the SLM agent does (caps, holds, completion, statistics) it
asks an *actuator* for: the agents over RPC (``slm_plugin.agent.client.
AgentActuator``) or, by default, libvirt on each host directly
(``DriverActuator``). A poller samples every running migration's job statistics
a few times a second; ``progress()`` is built from those samples and from the
domain events of both hosts (the destination's "resumed" event is the instant a
guest switches over).

* start: ``migrateToURI3(peer, {URI, LISTEN_ADDRESS, DEST_XML}, LIVE | PEER2PEER
  [| POSTCOPY])`` with the cap set as the guest's max speed just before.
* set_cap: ``migrateSetMaxSpeed``; libvirt takes whole MiB/s, so caps are rounded.
* hold / release: max downtime of 1 ms, then the downtime the guest had.
* force_complete: ``migrateStartPostCopy`` ("postcopy"), or a max downtime so
  large that QEMU stops the guest at its next check and copies what is dirty
  ("pause").
* A shared link can be emulated (``link_mibps``): every running migration's max
  speed is then its fair share of the link under its own cap, re-divided as
  migrations start and end. That is how free-running migrations share a real
  WAN link; on one machine, where loopback is nearly unlimited, it is what makes
  a budget shared at all.

A member is reported HELD when it is held and its dirty set would fit the
normal downtime: for the last ``converge_window_s`` every sample of the
remaining memory stayed below throughput x downtime.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import libvirt
from oslo_log import log as logging

from slm_plugin import exception
from slm_plugin.agent import driver as agent_driver
from slm_plugin.control import cloud as api
from slm_plugin.model.fairshare import max_min_share

LOG = logging.getLogger(__name__)

SETTLE_S = 2.0  # how long a refused action waits to see whether the migration just ended
FORCE_WAIT_S = 0.05  # how long force_complete waits for the agent before the next member


@dataclass(frozen=True, slots=True)
class LibvirtHost:
    """How to reach one host's libvirtd, and how migrations reach it."""

    uri: str  # from this process
    peer_uri: str | None = None  # from the other hosts' libvirtd (peer-to-peer); default uri
    migration_uri: str | None = None  # where the memory stream goes, e.g. tcp://10.0.0.2
    listen_address: str | None = None  # where the destination QEMU listens for it


@dataclass(frozen=True, slots=True)
class MigrationResult:
    """One real migration, as measured."""

    member: str
    uuid: str
    source: str
    destination: str
    status: str
    started_at: float  # migrateToURI3 called
    transfer_started_at: float | None  # first sample with memory flowing
    switchover_at: float | None  # the guest resumed at the destination
    finished_at: float | None
    downtime_ms: float | None
    wire_mib: float | None  # bytes QEMU sent
    memory_total_mib: float | None
    iterations: int | None
    constant_pages: int | None  # pages QEMU sent as "all zero"
    time_elapsed_s: float | None  # libvirt's job time (destination side)
    dirty_rate_mibps: float | None = None  # QEMU's largest measure from iteration 3 on
    error: str | None = None


class DriverActuator:
    """The agent's actions done here, through a LibvirtDriver per host (no RPC)."""

    def __init__(self, drivers: Mapping[str, agent_driver.LibvirtDriver]):
        self.drivers = drivers

    def _driver(self, host: str) -> agent_driver.LibvirtDriver:
        try:
            return self.drivers[host]
        except KeyError:
            raise exception.AgentUnavailable(f'no libvirt connection to host {host!r}') from None

    def set_cap(self, instance_uuid: str, host: str, cap_mibps: float | None) -> None:
        self._driver(host).set_max_speed(instance_uuid, cap_mibps)

    def hold(self, instance_uuid: str, host: str, held: bool) -> None:
        self._driver(host).hold(instance_uuid, held)

    def force_complete(self, instance_uuid: str, host: str, mode: str) -> None:
        self._driver(host).force_complete(instance_uuid, mode)

    def stats(self, instance_uuid: str, host: str) -> dict:
        return self._driver(host).migration_stats(instance_uuid)


class _Migration:
    def __init__(self, member, uuid, source, dest, started_at, memory_mib):
        self.member = member
        self.uuid = uuid
        self.source = source
        self.dest = dest
        self.started_at = started_at
        self.memory_mib = memory_mib
        self.thread: threading.Thread | None = None
        # each migration's own statistics and max-speed threads: libvirt answers a
        # migration's statistics late (1.5 s seen) while its job finishes after the
        # switchover, and that must not stall what the others report or are sent
        self.helpers: list[threading.Thread] = []
        self.cap_due = threading.Event()
        self.done = False
        self.error: str | None = None
        self.aborted = False
        self.finished_at: float | None = None
        self.final: dict | None = None  # completed-job statistics from the destination
        self.samples: deque = deque(maxlen=200)  # (t, stats)
        self.last: dict | None = None
        self.transfer_started_at: float | None = None
        self.iteration = 0
        self.round_started_at: float | None = None
        self.switchover_at: float | None = None
        self.paused_at: float | None = None
        self.postcopy = False
        self.held = False
        self.requested: float | None = None  # the planner's cap; None is uncapped
        self.effective: float | None = None  # the cap pushed to libvirt
        self.repushed = False
        self.pushed: tuple | None = None  # (cap,) last handed to the pusher
        self.qemu_dirty: float | None = None


class LibvirtCloud(api.Cloud):
    """Implements :class:`slm_plugin.control.cloud.Cloud` over real libvirt hosts.

    ``members`` maps each member name to (source host, domain UUID).
    ``estimates`` are dirty rates measured before the migration (MiB/s, e.g. by
    the agent), reported until QEMU has measured its own.
    ``default_cap_mibps`` is the max speed of a migration started or set without a
    cap, as Nova's ``[libvirt] live_migration_bandwidth`` (None: unlimited).
    ``dest_xml(member, xml, destination)`` may rewrite the domain XML for the
    destination (paths that differ between hosts).
    """

    def __init__(self, hosts: Mapping[str, LibvirtHost], members: Mapping[str, tuple[str, str]],
                 *, link_mibps: float | None = None, actuator=None, downtime_ms: int = 300,
                 postcopy: bool = True, poll_s: float = 0.1, converge_window_s: float = 0.6,
                 estimates: Mapping[str, float] | None = None,
                 default_cap_mibps: float | None = None,
                 dest_xml: Callable[[str, str, str], str] | None = None):
        agent_driver.start_event_loop()
        self.hosts = dict(hosts)
        self.members = dict(members)
        self.link_mibps = link_mibps
        self.downtime_ms = downtime_ms
        self.postcopy = postcopy
        self.poll_s = poll_s
        self.converge_window_s = converge_window_s
        self.estimates = dict(estimates or {})
        self.dest_xml = dest_xml
        self.default_cap_mibps = default_cap_mibps
        self._t0 = time.monotonic()
        self.drivers = {name: agent_driver.LibvirtDriver(h.uri) for name, h in self.hosts.items()}
        self.actuator = actuator or DriverActuator(self.drivers)
        self._migs: dict[str, _Migration] = {}
        self._by_uuid: dict[str, _Migration] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._callbacks: list[tuple[libvirt.virConnect, int]] = []
        for name, drv in self.drivers.items():
            try:
                conn = drv.connection()
                for event, handler in (
                        (libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._lifecycle),
                        (libvirt.VIR_DOMAIN_EVENT_ID_JOB_COMPLETED, self._job_completed)):
                    cb = conn.domainEventRegisterAny(None, event, handler, name)
                    self._callbacks.append((conn, cb))
            except (exception.AgentError, libvirt.libvirtError) as exc:
                LOG.warning('no domain events from %s: %s', name, exc)

    # -- Cloud interface -----------------------------------------------------------------

    def now(self) -> float:
        return time.monotonic() - self._t0

    def start(self, member: str, destination: str, cap_mibps: float | None) -> None:
        source, uuid = self._member(member)
        if destination not in self.hosts:
            raise exception.CloudError(f'{member}: destination host {destination!r} is unknown')
        if destination == source:
            raise exception.CloudError(f'{member} is already on {destination}')
        with self._lock:
            old = self._migs.get(member)
            if old is not None and not old.done:
                raise exception.CloudError(f'{member} is already migrating')
        src = self.drivers[source]
        try:
            memory = src.domain_stats(uuid)['memory_mib']
            xml = src.migratable_xml(uuid)
        except exception.AgentError as exc:
            raise exception.CloudError(f'{member}: {exc}') from None
        if self.dest_xml is not None:
            xml = self.dest_xml(member, xml, destination)
        dest = self.hosts[destination]
        params = {libvirt.VIR_MIGRATE_PARAM_DEST_XML: xml}
        if dest.migration_uri:
            params[libvirt.VIR_MIGRATE_PARAM_URI] = dest.migration_uri
        if dest.listen_address:
            params[libvirt.VIR_MIGRATE_PARAM_LISTEN_ADDRESS] = dest.listen_address
        flags = libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER
        if self.postcopy:
            flags |= libvirt.VIR_MIGRATE_POSTCOPY
        mig = _Migration(member, uuid, source, destination, self.now(), memory)
        mig.requested = self.default_cap_mibps if cap_mibps is None else cap_mibps
        with self._lock:
            self._migs[member] = mig
            self._by_uuid[uuid] = mig
            caps = self._effective_caps()
        try:
            # before the job: libvirt uses it when the migration begins
            self.actuator.set_cap(uuid, source, caps[member])
            mig.effective = caps[member]
            mig.pushed = (caps[member],)
        except (exception.AgentError, exception.CloudError) as exc:
            with self._lock:
                del self._migs[member]
            raise exception.CloudError(f'{member}: cannot set its max speed: {exc}') from None
        mig.thread = threading.Thread(
            target=self._migrate, args=(mig, dest.peer_uri or dest.uri, params, flags),
            name=f'migrate-{member}', daemon=True)
        mig.thread.start()
        for target, what in ((self._watch, 'stats'), (self._pusher, 'caps')):
            helper = threading.Thread(target=target, args=(mig,), name=f'{what}-{member}',
                                      daemon=True)
            helper.start()
            mig.helpers.append(helper)
        self._push_caps()

    def set_cap(self, member: str, cap_mibps: float | None) -> None:
        mig = self._running(member, finished_ok=True)
        if mig.done:
            return  # it ended between the planner's look and this call: nothing to throttle
        if cap_mibps is not None and (cap_mibps < 0 or math.isnan(cap_mibps)):
            raise exception.CloudError(f'a bandwidth cap must be a positive number of MiB/s, '
                                       f'got {cap_mibps}')
        mig.requested = self.default_cap_mibps if cap_mibps is None else cap_mibps
        self._push_caps()

    def hold(self, member: str, held: bool) -> None:
        mig = self._running(member, finished_ok=True)
        if mig.done:
            return
        self._act(mig, 'hold' if held else 'release', self.actuator.hold, held)
        mig.held = held

    def force_complete(self, member: str, mode: str) -> None:
        """Asked of several members in one tick, the requests overlap: each waits at most
        ``FORCE_WAIT_S`` before the next is sent; a refusal after that is logged."""
        mig = self._running(member, finished_ok=True)
        if mig.done:
            return  # already completed by itself
        errors: list[Exception] = []

        def force():
            try:
                self._act(mig, f'force-complete ({mode})', self.actuator.force_complete, mode)
            except exception.CloudError as exc:
                errors.append(exc)
                LOG.warning('%s', exc)

        worker = threading.Thread(target=force, name=f'force-{member}', daemon=True)
        worker.start()
        worker.join(FORCE_WAIT_S)
        if errors:
            raise errors[0]
        mig.held = False
        if mode == 'postcopy':
            mig.postcopy = True

    def abort(self, member: str) -> None:
        mig = self._running(member)
        if mig.postcopy or mig.switchover_at is not None:
            raise exception.CloudError(
                f'{member} already runs at the destination; too late to abort')
        mig.aborted = True
        try:
            self.drivers[mig.source].abort(mig.uuid)
        except exception.AgentError as exc:
            raise exception.CloudError(f'{member}: abort failed: {exc}') from None

    def progress(self, members=None) -> dict[str, api.Progress]:
        with self._lock:
            return {name: self._progress(mig) for name, mig in self._migs.items()}

    def wait(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))

    # -- results and shutdown ----------------------------------------------------------------

    def results(self) -> list[MigrationResult]:
        out = []
        with self._lock:
            migs = list(self._migs.values())
        for mig in migs:
            final = mig.final or {}
            last = mig.last or {}
            out.append(MigrationResult(
                member=mig.member, uuid=mig.uuid, source=mig.source, destination=mig.dest,
                status=self._status(mig), started_at=mig.started_at,
                transfer_started_at=mig.transfer_started_at,
                switchover_at=self._switchover(mig), finished_at=mig.finished_at,
                downtime_ms=final.get('downtime_ms'),
                wire_mib=final.get('data_processed_mib', last.get('data_processed_mib')),
                memory_total_mib=final.get('memory_total_mib', last.get('memory_total_mib')),
                iterations=final.get('iteration', last.get('iteration')),
                constant_pages=final.get('constant_pages'),
                time_elapsed_s=final.get('time_elapsed_s'),
                dirty_rate_mibps=mig.qemu_dirty,
                error=mig.error,
            ))
        return out

    def join(self, timeout: float | None = None) -> None:
        """Wait for every migration thread to return."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for mig in list(self._migs.values()):
            if mig.thread is not None:
                mig.thread.join(None if deadline is None
                                else max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            migs = list(self._migs.values())
        for mig in migs:
            mig.cap_due.set()
        for mig in migs:
            for helper in mig.helpers:
                helper.join(timeout=5)
        for conn, cb in self._callbacks:
            try:
                conn.domainEventDeregisterAny(cb)
            except libvirt.libvirtError:
                pass
        self._callbacks = []
        for drv in self.drivers.values():
            drv.close()

    # -- internals ---------------------------------------------------------------------------

    def _member(self, member: str) -> tuple[str, str]:
        try:
            return self.members[member]
        except KeyError:
            raise exception.CloudError(f'unknown server {member!r}') from None

    def _running(self, member: str, finished_ok: bool = False) -> _Migration:
        """The member's migration; one that already ended is an error unless
        ``finished_ok`` (actions racing with a migration's end are then no-ops)."""
        self._member(member)
        with self._lock:
            mig = self._migs.get(member)
        if mig is None or (mig.done and not (finished_ok and mig.error is None)):
            raise exception.CloudError(f'{member} has no migration in progress')
        return mig

    def _act(self, mig: _Migration, what: str, action, *args) -> None:
        try:
            action(mig.uuid, mig.source, *args)
        except (exception.AgentError, exception.CloudError) as exc:
            # QEMU may have switched the guest over by itself a moment ago: then the
            # source has no guest (or no job) left to act on, and nothing is wrong
            if mig.thread is not None:
                mig.thread.join(SETTLE_S)
            if mig.done and mig.error is None:
                LOG.debug('%s: %s after the migration ended: %s', mig.member, what, exc)
                return
            raise exception.CloudError(f'{mig.member}: {what} failed: {exc}') from None

    def _migrate(self, mig: _Migration, peer_uri: str, params: dict, flags: int) -> None:
        try:
            self.drivers[mig.source].migrate(mig.uuid, peer_uri, params, flags)
        except exception.AgentError as exc:
            mig.error = str(exc)
        finished = self.now()
        final = None
        if mig.error is None:
            try:
                final = self.drivers[mig.dest].completed_stats(mig.uuid)
            except exception.AgentError as exc:
                LOG.warning('%s: no completed-job statistics: %s', mig.member, exc)
        with self._lock:
            if final is not None and final.get('type') == 'completed':
                mig.final = final
            # else (post-copy) the source's job-completed event brought them
            mig.finished_at = finished
            mig.done = True
        LOG.info('%s: migration to %s %s', mig.member, mig.dest,
                 'completed' if mig.error is None else f'ended: {mig.error}')
        self._push_caps()

    def _lifecycle(self, conn, dom, event, detail, host) -> None:
        t = self.now()
        try:
            uuid = dom.UUIDString()
        except libvirt.libvirtError:
            return
        with self._lock:
            mig = self._by_uuid.get(uuid)
            if mig is None:
                return
            if host == mig.dest and event == libvirt.VIR_DOMAIN_EVENT_RESUMED and detail in (
                    libvirt.VIR_DOMAIN_EVENT_RESUMED_MIGRATED,
                    libvirt.VIR_DOMAIN_EVENT_RESUMED_POSTCOPY):
                if mig.switchover_at is None:
                    mig.switchover_at = t
                if detail == libvirt.VIR_DOMAIN_EVENT_RESUMED_POSTCOPY:
                    mig.postcopy = True
                self._push_caps()  # a pre-copy one no longer shares the link
            elif host == mig.source and event == libvirt.VIR_DOMAIN_EVENT_SUSPENDED:
                if detail == libvirt.VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED and mig.paused_at is None:
                    mig.paused_at = t
                elif detail == libvirt.VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY:
                    mig.postcopy = True

    def _job_completed(self, conn, dom, params, host) -> None:
        try:
            uuid = dom.UUIDString()
        except libvirt.libvirtError:
            return
        with self._lock:
            mig = self._by_uuid.get(uuid)
            if mig is not None and host == mig.source and mig.final is None:
                mig.final = agent_driver.job_stats(params, libvirt.VIR_DOMAIN_RUNNING, 0)

    def _watch(self, mig: _Migration) -> None:
        """Sample one migration's statistics every ``poll_s`` until it ends."""
        while not self._stop.wait(self.poll_s) and not mig.done:
            try:
                stats = self.actuator.stats(mig.uuid, mig.source)
            except (exception.AgentError, exception.CloudError) as exc:
                LOG.debug('%s: no statistics: %s', mig.member, exc)
                continue
            except Exception:  # an RPC timeout must not kill the watcher
                LOG.exception('%s: statistics failed', mig.member)
                continue
            self._sample(mig, stats)

    def _sample(self, mig: _Migration, stats: dict) -> None:
        t = self.now()
        repush = False
        with self._lock:
            if mig.done or not stats.get('active'):
                return
            mig.last = stats
            mig.samples.append((t, stats))
            sent = stats.get('data_processed_mib') or 0.0
            if mig.transfer_started_at is None and sent > 0:
                # when the first byte left: back from this sample at the current rate
                rate = stats.get('throughput_mibps') or 0.0
                back = sent / rate if rate > 0 else 0.0
                mig.transfer_started_at = max(mig.started_at, t - min(back, self.poll_s * 2))
                repush = not mig.repushed
                mig.repushed = True
            iteration = stats.get('iteration') or 0
            if iteration != mig.iteration:
                mig.iteration = iteration
                mig.round_started_at = t
            if stats.get('postcopy'):
                mig.postcopy = True
            if iteration >= 3 and stats.get('dirty_rate_mibps') is not None:
                # the largest: a long round saturates at the working set and reads low
                mig.qemu_dirty = max(mig.qemu_dirty or 0.0, stats['dirty_rate_mibps'])
        if repush:  # the cap set before the job began might not have reached QEMU
            self._push_caps(force=mig.member)

    def _effective_caps(self) -> dict[str, float | None]:
        live = [m for m in self._migs.values()
                if not m.done and (m.postcopy or m.switchover_at is None)]
        if self.link_mibps is None:
            return {m.member: m.requested for m in live}
        demands = [math.inf if m.requested is None else m.requested for m in live]
        rates = max_min_share(demands, [('link',)] * len(live), {'link': self.link_mibps})
        return {m.member: r for m, r in zip(live, rates, strict=True)}

    def _push_caps(self, force: str | None = None) -> None:
        """Hand the caps that changed to the pusher thread (the loop never waits on them).

        libvirt takes whole MiB/s, so only a change of that value is pushed; a
        migration in post-copy is left alone (its pages move at QEMU's post-copy
        bandwidth, unlimited by default).
        """
        with self._lock:
            for name, cap in self._effective_caps().items():
                mig = self._migs[name]
                if mig.postcopy:
                    continue
                if name == force or mig.pushed is None or (
                        agent_driver._speed(cap) != agent_driver._speed(mig.pushed[0])):
                    mig.effective = cap
                    mig.pushed = (cap,)
                    mig.cap_due.set()

    def _pusher(self, mig: _Migration) -> None:
        """Send one migration the max speed last handed to it, until it ends."""
        while True:
            mig.cap_due.wait(0.5)
            if self._stop.is_set() or mig.done:
                return
            if not mig.cap_due.is_set():
                continue
            mig.cap_due.clear()
            with self._lock:
                cap = mig.pushed[0]
            if mig.postcopy:
                continue
            try:
                self.actuator.set_cap(mig.uuid, mig.source, cap)
            except (exception.AgentError, exception.CloudError) as exc:
                if not mig.done and not isinstance(getattr(exc, 'cause', exc),
                                                   exception.DomainNotFound):
                    LOG.warning('%s: max speed %s not set: %s', mig.member, cap, exc)
            except Exception:
                LOG.exception('%s: max speed %s not set', mig.member, cap)

    def _converged(self, mig: _Migration) -> bool:
        if mig.iteration < 2 or not mig.samples:
            return False
        t_end = mig.samples[-1][0]
        window = [s for t, s in mig.samples if t >= t_end - self.converge_window_s]
        if mig.samples[0][0] > t_end - self.converge_window_s:
            return False  # not watched for long enough yet
        rate = max(mig.last.get('throughput_mibps') or 0.0, mig.effective or 0.0)
        limit = rate * self.downtime_ms / 1000
        return all((s.get('memory_remaining_mib') or 0.0) <= limit for s in window)

    def _status(self, mig: _Migration) -> str:
        if mig.done:
            if mig.error is None:
                return api.COMPLETED
            return api.ABORTED if mig.aborted else api.FAILED
        if mig.postcopy or mig.switchover_at is not None:
            # resumed at the destination: a post-copy tail, or a pre-copy job whose
            # source is finishing it (libvirt's confirm phase: no page moves any more)
            return api.SWITCHED_OVER
        if mig.held and self._converged(mig):
            return api.HELD
        return api.MIGRATING

    def _switchover(self, mig: _Migration) -> float | None:
        if mig.switchover_at is not None:
            return mig.switchover_at
        if mig.done and mig.error is None:
            return mig.finished_at  # no event seen: the end of the job is the next best
        return None

    def _progress(self, mig: _Migration) -> api.Progress:
        last = mig.last or {}
        status = self._status(mig)
        iteration = last.get('iteration') or 0
        remaining = last.get('memory_remaining_mib')
        if remaining is None or (mig.transfer_started_at is None and not remaining):
            remaining = mig.memory_mib  # nothing sent yet
        dirty = None
        if iteration >= 2 and last.get('dirty_rate_mibps') is not None:
            dirty = last['dirty_rate_mibps']
        elif mig.member in self.estimates:
            dirty = self.estimates[mig.member]
        final = mig.final or {}
        switchover = self._switchover(mig) if status in api.RESUMED else None
        return api.Progress(
            member=mig.member,
            status=status,
            disk_remaining_mib=0.0,
            memory_remaining_mib=0.0 if mig.done else float(remaining),
            round=max(iteration - 1, 0),
            wire_mib=float(final.get('data_processed_mib') or last.get('data_processed_mib')
                           or 0.0),
            throughput_mibps=0.0 if mig.done else float(last.get('throughput_mibps') or 0.0),
            dirty_rate_mibps=dirty,
            started_at=mig.started_at,
            round_started_at=mig.round_started_at,
            switchover_at=switchover,
            downtime_s=None if final.get('downtime_ms') is None
            else final['downtime_ms'] / 1000,
            finished_at=mig.finished_at if mig.done else None,
        )
