"""NovaCloud: the Cloud interface over the Compute API, through openstacksdk.

=================  ===================================================================
``start``          ``os-migrateLive`` with the planned host (the scheduler checks it,
                   2.30+) and ``block_migration: "auto"``; transient failures are
                   retried, and a start is never sent twice (see below)
``progress``       each tick, per member: ``GET /servers/{id}/migrations`` (memory and
                   disk total/processed/remaining while it runs), and the migration
                   list filtered by server (2.59) once it has ended
``force_complete`` ``POST .../migrations/{id}/action {"force_complete": null}``
``abort``          ``DELETE .../migrations/{id}`` (2.24; queued ones too from 2.65)
``set_cap``        no Nova API: sent to the ``BandwidthActuator`` when there is one,
                   otherwise recorded as not enforced (``notes``)
``hold``           no Nova API: sent to the actuator when there is one. In every case
                   a held member that has converged is left running until it is
                   released; releasing it is a force-complete through the API
=================  ===================================================================

Hold, more precisely. Nova reports bytes, not "converged": a running
migration that has sent all of memory once and has at most
``converged_mib`` left is reported ``HELD``. Whether it then really waits
depends on the hypervisor: a test driver, or a host whose agent keeps it
iterating, waits for the force-complete; libvirt without the agent switches
over by itself when the rest fits its downtime, and the hold is then only a
wish (the notes say so). A converged member that nobody holds is completed
at once through the API, as the hypervisor would do by itself, so planners
that never hold (the baselines) work the same way.

force_complete's ``mode`` (pause or post-copy) cannot be chosen through
Nova: the compute host's ``[libvirt] live_migration_permit_post_copy``
decides. The notes say so when a planner asked for the other one.

Never twice. Before the first attempt of a start, the server must be ACTIVE
(or PAUSED) with no task, and the ids of its earlier migrations are noted.
Before any retry of the start, Nova is asked whether the earlier attempt was
accepted after all (its answer lost on the way back): the server is in task
state ``migrating`` or has a migration that was not there before. If so that
migration is adopted and nothing is sent again.
"""

from __future__ import annotations

import calendar
import datetime
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from openstack import exceptions as sdk_exc
from oslo_log import log as logging

from slm_plugin import exception
from slm_plugin.common import retry as retries
from slm_plugin.control import cloud as api
from slm_plugin.nova import compute_api

LOG = logging.getLogger(__name__)

MIB = 1024.0 * 1024.0

# Nova's migration statuses and what the loop sees
IN_PROGRESS = ('accepted', 'queued', 'preparing', 'pre-migrating', 'running', 'post-migrating')
FINAL_STATUS = {
    'completed': api.COMPLETED,
    'done': api.COMPLETED,
    'cancelled': api.ABORTED,
    'error': api.FAILED,
    'failed': api.FAILED,
}
POSTCOPY = 'running (post-copy)'
#: Seconds after an aborted migration settles during which Nova may still set its
#: server to ERROR (about 1 s with Nova 34's libvirt driver; more on a loaded controller)
ERROR_AFTER_ABORT_S = 10.0
ABORTABLE = ('queued', 'preparing', 'running')
#: Where an abort reaches the migration. Nova's API answers 202 to every abort and
#: casts it to the source compute, which drops it (``InvalidMigrationState`` in its
#: log only) when the migration has left the queue but is still ``preparing``, and
#: libvirt refuses it before its job exists: the abort is lost and the migration goes on.
ABORT_TAKES = ('queued', 'running')
#: Seconds after an abort was sent during which the migration may still be running
#: before the abort is sent again (Nova 34 cancels a running job in under 1 s)
ABORT_RESEND_S = 3.0
ABORT_SENDS = 5
#: Seconds the clocks of an engine and of Nova's controllers may differ by, when a
#: migration is recognised by when Nova created it (``adopt`` without a handle).
CLOCK_SKEW_S = 5.0


class BandwidthActuator(Protocol):
    """What the per-host agent does for a migration that Nova's API cannot.

    ``host`` is the source compute host of the migration; ``server_id`` the
    Nova server. Errors are raised as :class:`~slm_plugin.control.exception.CloudError`.

    Two methods are optional (the SLM agent's ``AgentActuator`` has them): with
    ``stats(server_id, host)`` (the source's running libvirt job) NovaCloud steers
    from libvirt's figures instead of Nova's 5-second records, and with
    ``record(server_id, host)`` (what a host's libvirtd said of the migration:
    ``agent.ledger``) it reports libvirt's own switchover instant, downtime and
    bytes. Without them Nova's records are all there is.
    """

    def set_cap(self, server_id: str, host: str, cap_mibps: float | None) -> None:
        """Max migration speed (libvirt ``virDomainMigrateSetMaxSpeed``); None lifts it."""

    def hold(self, server_id: str, host: str, held: bool) -> None:
        """Keep a converged migration iterating instead of switching over."""

    def dirty_rate(self, server_id: str, host: str) -> float | None:
        """The guest's measured memory dirty rate, MiB/s; None when not measured."""


@dataclass
class _Track:
    """What NovaCloud knows of one member's migration."""

    member: str
    server_id: str
    destination: str | None
    started_at: float
    known: frozenset  # ids of the server's migrations before this one started
    migration_id: int | None = None
    source: str | None = None
    nova_status: str = 'accepted'
    status: str = api.MIGRATING
    held: bool = False
    forced: bool = False
    cap: float | None = None
    memory: tuple[int, int, int] = (0, 0, 0)  # total, processed, remaining bytes
    disk: tuple[int, int, int] = (0, 0, 0)
    sample: tuple[float, float] | None = None  # (time, wire MiB) of the last look
    throughput: float = 0.0
    round_started_at: float | None = None
    round: int = 0
    switchover_at: float | None = None
    finished_at: float | None = None
    #: the source's libvirt job as the agent last read it (None: not read, or ended)
    libvirt: dict | None = None
    steered_by_libvirt: bool = False  # libvirt's figures were seen: it completes by itself
    #: what the destination's (and source's) libvirtd said of the migration: switchover
    #: instant, downtime, bytes (agent.ledger); asked for until it has them
    final: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)


class NovaCloud(api.Cloud):
    """Implements :class:`slm_plugin.control.cloud.Cloud` with Nova's API.

    ``servers`` maps each member name (as in the scenario and plan) to its
    server id. ``now()`` is wall-clock time (seconds since the epoch), which
    every engine reads alike.
    """

    def __init__(self, conn, servers: Mapping[str, str], *, microversion: str | None = None,
                 actuator: BandwidthActuator | None = None,
                 retry: retries.RetryPolicy | None = None, converged_mib: float = 32.0,
                 abort_wait_s: float = 30.0, reset_after_abort: bool = True,
                 clock=time.time, sleep=time.sleep):
        self.conn = conn
        self.reset_after_abort = reset_after_abort
        self.servers = dict(servers)
        self.microversion = microversion or compute_api.negotiate(conn)
        self.actuator = actuator
        self.retry = retry or retries.RetryPolicy()
        self.converged_mib = converged_mib
        self.abort_wait_s = abort_wait_s
        self._clock = clock
        self._sleep = sleep
        self._tracks: dict[str, _Track] = {}
        self._notes: list[str] = []
        self._lock = threading.RLock()

    # -- Cloud interface ------------------------------------------------------------

    def now(self) -> float:
        return self._clock()

    def wait(self, seconds: float) -> None:
        self._sleep(seconds)

    def start(self, member: str, destination: str, cap_mibps: float | None) -> None:
        with self._lock:
            server_id = self._server_id(member)
            if member in self._tracks:
                raise exception.CloudError(f'{member} was started already by this job')
            server = self._get_server(server_id, member)
            if server.task_state:
                raise exception.CloudError(f'{member} is busy (task_state {server.task_state}); '
                                           'not starting another migration')
            if server.status not in ('ACTIVE', 'PAUSED'):
                raise exception.CloudError(f'{member} is {server.status}; Nova live-migrates only '
                                           'ACTIVE or PAUSED servers')
            known = frozenset(m.id for m in self._migrations(server_id, member))
            track = _Track(member, server_id, destination, self.now(), known,
                           source=server.compute_host)

            def send():
                self._post_live_migrate(server_id, destination)
                return 'sent'

            try:
                how = retries.call_once(self.retry, send, lambda: self._took_effect(track),
                                        what=f'live migration of {member}')
            except Exception as exc:
                transient = retries.is_transient(exc)
                if not transient and not isinstance(exc, sdk_exc.HttpException):
                    raise
                # after a transient failure the last attempt's answer may be the one
                # that was lost: ask once more before giving up
                how = self._adopt_after_all(track) if transient else None
                if how is None and transient:
                    raise exception.CloudError(f'{member}: the live migration to {destination} '
                                               f'could not be requested: {exc}') from exc
                if how is None:
                    raise exception.CloudError(
                        f'{member}: Nova refused the live migration to '
                        f'{destination}: {compute_api.message(exc)}') from exc
            if how != 'sent':
                LOG.info('%s: adopted the live migration accepted by an earlier attempt',
                         member)
                track.extra['adopted'] = True
            self._tracks[member] = track
        if cap_mibps is not None:
            self.set_cap(member, cap_mibps)

    @property
    def caps_enforced(self) -> bool:
        return self.actuator is not None

    def set_cap(self, member: str, cap_mibps: float | None) -> None:
        track = self._running(member)
        if track.forced:
            return  # completing: its cap was lifted (see _force) and stays lifted
        track.cap = cap_mibps
        if self.actuator is None:
            self._note("bandwidth caps are not enforced: Nova has no API for a migration's "
                       'speed and no bandwidth actuator (SLM agent) is configured; migrations '
                       'run at whatever speed the hosts give them')
            return
        self._cap_on_host(track, cap_mibps)

    def _cap_on_host(self, track: _Track, cap_mibps: float | None) -> None:
        """The max speed through the agent. A guest already gone from its source host has
        switched over (libvirt removes it there the instant its migration completes, seconds
        before Nova records the end): there is nothing left to cap, and no error."""
        try:
            self.actuator.set_cap(track.server_id, track.source or '', cap_mibps)
        except exception.ActuatorError as exc:
            if not isinstance(exc.cause, exception.DomainNotFound):
                raise
            LOG.info('%s: no longer on %s: its migration has ended; cap not needed',
                     track.member, track.source)
            track.extra['left_source'] = self.now()

    def hold(self, member: str, held: bool) -> None:
        track = self._running(member)
        track.held = held
        if self.actuator is not None:
            self.actuator.hold(track.server_id, track.source or '', held)
        elif held:
            self._note('holds rely on the hypervisor: without the SLM agent a converged '
                       'migration waits for its force-complete only where the compute driver '
                       'waits; libvirt switches over by itself once the rest fits its downtime')
        if not held and track.status == api.HELD:
            self._force(track)

    def force_complete(self, member: str, mode: str) -> None:
        track = self._running(member)
        self._note_mode(mode)
        self._force(track)

    def abort(self, member: str) -> None:
        track = self._running(member)
        self._wait_abortable(track)
        if track.status not in (api.MIGRATING, api.HELD):
            raise exception.CloudError(
                f'{member}: nothing to abort, the migration is {track.status}')
        if track.migration_id is None or track.nova_status not in ABORTABLE:
            raise exception.CloudError(
                f'{member}: the migration is still {track.nova_status} after '
                f'{self.abort_wait_s:.0f} s; Nova cannot abort it before it '
                'is queued')
        if (track.nova_status in ('queued', 'preparing')
                and not compute_api.at_least(self.microversion,
                                             compute_api.ABORT_QUEUED_VERSION)):
            raise exception.CloudError(f'{member}: the migration is {track.nova_status}; this Nova '
                                       f'aborts only running migrations (microversion '
                                       f'{self.microversion} < {compute_api.ABORT_QUEUED_VERSION})')

        self._send_abort(track)

    def _send_abort(self, track: _Track, again: bool = False) -> None:
        sends = track.extra.get('abort_sent', (0, '', 0))[2] + 1
        if again:  # counted first: a refusal here must not send it again from _poll
            track.extra['abort_sent'] = (self._clock(), track.nova_status, sends)

        def delete():
            self.conn.compute.abort_server_migration(track.migration_id, track.server_id,
                                                     ignore_missing=False)

        try:
            self.retry.call(delete, what=f'abort of {track.member}')
        except sdk_exc.HttpException as exc:
            if not again:
                self._poll(track)
            if track.status == api.ABORTED:
                return  # an earlier attempt went through
            raise exception.CloudError(f'{track.member}: Nova refused to abort the migration: '
                                       f'{compute_api.message(exc)}') from exc
        track.extra.setdefault('abort_requested', self.now())
        track.extra['abort_sent'] = (self._clock(), track.nova_status, sends)

    def _abort_lost(self, track: _Track) -> bool:
        """Whether an abort sent earlier has visibly not reached the migration: sent
        before the migration was where an abort takes (``ABORT_TAKES``) and it is there
        now, or sent to a running migration that still runs ``ABORT_RESEND_S`` later."""
        sent = track.extra.get('abort_sent')
        if sent is None or track.status in api.FINAL or track.nova_status != 'running':
            return False
        at, status, count = sent
        if count >= ABORT_SENDS:
            return False
        return status != 'running' or self._clock() - at >= ABORT_RESEND_S

    def progress(self, members=None) -> dict[str, api.Progress]:
        with self._lock:
            for track in self._tracks.values():
                if track.status not in api.FINAL:
                    self._poll(track)
            return {name: self._progress(t) for name, t in self._tracks.items()}

    # -- taking a migration over from another process ---------------------------------

    def handle(self, member: str) -> dict:
        """What another NovaCloud needs to find this member's migration again (``adopt``).

        Nova's records do not say which job started a migration; the ids of the
        server's migrations from before the start do: the job's is the new one.
        """
        with self._lock:
            t = self._running(member)
            return {'server_id': t.server_id, 'known': sorted(t.known), 'source': t.source,
                    'destination': t.destination,
                    # its start's answer was lost and Nova was asked whether it took effect
                    'adopted': bool(t.extra.get('adopted'))}

    def adopt(self, member: str, requested_at: float, handle: dict | None = None,
              held: bool = False) -> bool:
        """Follow the migration another process started for ``member``; False if there is none.

        ``requested_at`` is when that process asked for it (``now()``'s clock).
        With the ``handle`` it recorded after the start, the migration is the one
        whose id was not known before. Without (the process stopped between
        asking and recording), it is the newest one Nova created since the
        request, give or take ``CLOCK_SKEW_S``; with none recorded yet, a server
        in task state ``migrating`` is followed until its record appears. A
        migration that ended while nobody followed it keeps Nova's instant of
        its end. ``held``: whether the other process last held it; a converged
        migration that is not held is completed, as ``progress`` does.
        """
        with self._lock:
            if member in self._tracks:
                return True
            server_id = self._server_id(member)
            handle = handle or {}
            migrations = self._migrations(server_id, member)
            if 'known' in handle:
                known = frozenset(handle['known'])
            else:
                since = requested_at - CLOCK_SKEW_S
                known = frozenset(m.id for m in migrations
                                  if (_instant(m.created_at) or 0.0) < since)
            fresh = sorted((m for m in migrations if m.id not in known), key=lambda m: m.id)
            if not fresh and self._get_server(server_id, member).task_state != 'migrating':
                return False
            track = _Track(member, server_id, handle.get('destination'), requested_at, known,
                           source=handle.get('source'))
            track.extra['adopted'] = True
            track.held = held
            self._tracks[member] = track
            self._poll(track)
            newest = fresh[-1] if fresh else None
            if newest is not None and track.status in api.FINAL:
                ended = _instant(getattr(newest, 'updated_at', None))
                if ended is not None:
                    track.finished_at = ended
                    if track.status == api.COMPLETED:
                        track.switchover_at = ended
            return True

    @property
    def notes(self) -> tuple[str, ...]:
        return tuple(self._notes)

    # -- beyond the Cloud interface --------------------------------------------------

    def migration_of(self, member: str) -> dict:
        """What is known of a member's migration: Nova's id and status, source, flags."""
        t = self._tracks[member]
        return {'migration_id': t.migration_id, 'nova_status': t.nova_status,
                'source': t.source, 'destination': t.destination, 'status': t.status,
                'forced': t.forced, **t.extra}

    def settle(self, timeout_s: float = 60.0, interval_s: float = 0.2) -> dict[str, api.Progress]:
        """Wait until no started migration is still in progress (after aborts, say); then
        put right the servers Nova set to ERROR after an abort (``_after_aborts``)."""
        deadline = self._clock() + timeout_s
        while True:
            progress = self.progress()
            busy = [n for n, p in progress.items() if p.status not in api.FINAL]
            if not busy or self._clock() >= deadline:
                break
            self._sleep(interval_s)
        self._after_aborts(min(ERROR_AFTER_ABORT_S, max(0.0, deadline - self._clock())),
                           interval_s)
        return self.progress()

    def _after_aborts(self, wait_s: float, interval_s: float) -> None:
        """Nova 34 sets a server to ERROR about a second after the clean rollback of a
        migration aborted through its API (3 of 3 runs with the libvirt driver), although
        its guest runs on, on its source host. An aborted member found so (ERROR, on its
        source host) is reset to ACTIVE when ``reset_after_abort`` is set, as an operator
        would (``openstack server set --state active``); either way the notes say so."""
        aborted = [t for t in self._tracks.values()
                   if 'abort_requested' in t.extra and t.status == api.ABORTED]
        if not aborted:
            return
        deadline = self._clock() + wait_s
        pending = {t.member: t for t in aborted}
        while pending:
            for name, track in list(pending.items()):
                try:
                    server = self.conn.compute.get_server(track.server_id)
                except sdk_exc.HttpException as exc:
                    LOG.warning('%s: cannot read the server after its abort: %s', name, exc)
                    del pending[name]
                    continue
                if server.status != 'ERROR':
                    continue
                del pending[name]
                if server.compute_host != track.source:
                    self._note(f'{name} is in ERROR on {server.compute_host} after its '
                               'migration was aborted; left for an operator')
                    continue
                if not self.reset_after_abort:
                    self._note(f'{name}: Nova set the server to ERROR after its migration was '
                               'aborted, although it runs on its source host '
                               f'{track.source}; reset it with openstack server set --state '
                               'active')
                    continue
                try:
                    self.retry.call(self.conn.compute.reset_server_state, track.server_id,
                                    'active', what=f'reset of {name} to ACTIVE')
                except sdk_exc.HttpException as exc:
                    self._note(f'{name}: Nova set the server to ERROR after its migration was '
                               f'aborted, and resetting it failed: {compute_api.message(exc)}')
                    continue
                track.extra['reset_after_abort'] = True
                self._note(f'{name}: Nova set the server to ERROR after its migration was '
                           'aborted, although it runs on its source host '
                           f'{track.source}; SLM reset it to ACTIVE')
            if not pending or self._clock() >= deadline:
                return
            self._sleep(interval_s)

    # -- Nova calls -------------------------------------------------------------------

    def _post_live_migrate(self, server_id: str, host: str | None) -> None:
        body = {'os-migrateLive': {'host': host, 'block_migration': 'auto'}}
        # connect_retries=0: a repeat is decided here, after asking Nova (never twice)
        response = self.conn.compute.post(f'/servers/{server_id}/action', json=body,
                                          microversion=self.microversion, connect_retries=0)
        sdk_exc.raise_from_response(response)

    def _get_server(self, server_id: str, member: str):
        try:
            return self.retry.call(self.conn.compute.get_server, server_id,
                                   what=f'look at {member}')
        except sdk_exc.NotFoundException as exc:
            raise exception.CloudError(f'{member}: server {server_id} does not exist') from exc
        except sdk_exc.HttpException as exc:
            raise exception.CloudError(f'{member}: {compute_api.message(exc)}') from exc

    def _migrations(self, server_id: str, member: str) -> list:
        """Every live migration Nova has recorded of the server."""
        def listing():
            return list(self.conn.compute.migrations(server_id=server_id,
                                                     migration_type='live-migration'))
        try:
            return self.retry.call(listing, what=f'migrations of {member}')
        except sdk_exc.HttpException as exc:
            raise exception.CloudError(f'{member}: {compute_api.message(exc)}') from exc

    def _took_effect(self, track: _Track):
        """Whether an earlier start of this member was carried out after all."""
        server = self.conn.compute.get_server(track.server_id)
        if server.task_state == 'migrating':
            return 'adopted'
        fresh = [m for m in self.conn.compute.migrations(
            server_id=track.server_id, migration_type='live-migration')
            if m.id not in track.known]
        return 'adopted' if fresh else None

    def _wait_abortable(self, track: _Track) -> None:
        """Until an abort reaches it: recorded and queued or running (or ended).

        Just after the start the conductor has not scheduled it yet (no record, or
        ``accepted``), and an abort then would be refused; while it is ``preparing``
        Nova accepts the abort and its compute drops it (``ABORT_TAKES``). After
        ``abort_wait_s`` an abortable one is aborted where it is, and an abort that
        did not take is sent again once it runs (``_abort_lost``).
        """
        deadline = self._clock() + self.abort_wait_s
        while True:
            self._poll(track)
            if track.status in api.FINAL or track.status == api.SWITCHED_OVER:
                return
            if track.migration_id is not None and track.nova_status in ABORT_TAKES:
                return
            if self._clock() >= deadline:
                return
            self._sleep(0.1)

    def _adopt_after_all(self, track: _Track):
        try:
            return self.retry.call(self._took_effect, track, what=f'look at {track.member}')
        except Exception as exc:
            LOG.warning('%s: cannot tell whether the live migration was accepted: %s',
                        track.member, exc)
            return None

    def _force(self, track: _Track) -> None:
        if track.forced:
            return
        if track.migration_id is None or track.nova_status != 'running':
            self._poll(track)
        if track.nova_status != 'running':
            raise exception.CloudError(f'{track.member}: cannot force-complete a migration that is '
                                       f'{track.nova_status}')

        if self.actuator is not None and track.cap is not None:
            # Nova completes by pausing the guest (post-copy off) or by post-copy: a cap
            # still set would stretch the paused copy into seconds of downtime (26.6 s at
            # 4 MiB/s, seen on Nova 34 with libvirt), so it is lifted first
            self._cap_on_host(track, None)
            track.cap = None

        def force():
            self.conn.compute.force_complete_server_migration(track.migration_id,
                                                              track.server_id)
        try:
            self.retry.call(force, what=f'force-complete of {track.member}')
        except sdk_exc.HttpException as exc:
            self._poll(track)
            if track.status in api.RESUMED:
                return  # it finished meanwhile
            raise exception.CloudError(f'{track.member}: Nova refused to force-complete: '
                                       f'{compute_api.message(exc)}') from exc
        track.forced = True
        track.extra['forced_at'] = self.now()

    # -- reading progress -----------------------------------------------------------

    def _poll(self, track: _Track) -> None:
        try:
            running = self.retry.call(self._in_progress, track, what=f'progress of {track.member}')
            record = running or self.retry.call(self._latest, track,
                                                what=f'migrations of {track.member}')
        except Exception as exc:
            if isinstance(exc, sdk_exc.HttpException) or retries.is_transient(exc):
                LOG.warning('%s: progress unknown this tick: %s', track.member, exc)
                return  # keep the last known state; the next tick asks again
            raise
        now = self.now()
        if record is None:
            return  # accepted, not recorded yet: the conductor creates it shortly
        track.migration_id = record.id
        track.nova_status = record.status or track.nova_status
        if getattr(record, 'source_compute', None):
            track.source = record.source_compute
        if track.destination is None and getattr(record, 'dest_compute', None):
            track.destination = record.dest_compute
        if running is not None:
            track.memory = _bytes(record, 'memory')
            track.disk = _bytes(record, 'disk')
        if track.nova_status in IN_PROGRESS:
            self._read_libvirt(track, now)
        status = self._status(track)
        if status in api.RESUMED or 'left_source' in track.extra:
            self._read_final(track)
            resumed = track.final.get('resumed_at')
            if resumed is not None and status == api.MIGRATING:
                status = api.SWITCHED_OVER  # running at its destination; Nova not told yet
            if resumed is not None and track.switchover_at is None:
                track.switchover_at = resumed
        if status == api.SWITCHED_OVER and track.switchover_at is None:
            track.switchover_at = now
        if status in api.FINAL and track.finished_at is None:
            track.finished_at = now
            if status == api.COMPLETED and track.switchover_at is None:
                track.switchover_at = now
        self._sample(track, now)
        track.status = status
        if self._abort_lost(track):
            LOG.warning('%s: the abort sent while the migration was %s did not take; '
                        'sending it again', track.member, track.extra['abort_sent'][1])
            try:
                self._send_abort(track, again=True)
            except exception.CloudError as exc:
                LOG.warning('%s: %s', track.member, exc)
            return
        if status == api.HELD and not track.held and not track.forced:
            # converged and nobody holds it: it switches over, as a hypervisor would
            try:
                self._force(track)
            except exception.CloudError as exc:
                LOG.warning('%s: completing it failed, trying again next time: %s',
                            track.member, exc)

    def _in_progress(self, track: _Track):
        found = [m for m in self.conn.compute.server_migrations(track.server_id)
                 if m.id not in track.known]
        return max(found, key=lambda m: m.id) if found else None

    def _latest(self, track: _Track):
        found = [m for m in self.conn.compute.migrations(
            server_id=track.server_id, migration_type='live-migration')
            if m.id not in track.known]
        return max(found, key=lambda m: m.id) if found else None

    def _status(self, track: _Track) -> str:
        nova = track.nova_status
        if nova == 'error' and 'abort_requested' in track.extra and track.status in (
                api.ABORTED, api.MIGRATING, api.HELD):
            # Nova 34's libvirt driver re-raises the cancelled job after a clean
            # rollback, and the compute manager then marks the migration (and the
            # instance) in error: what was asked for was an abort, and an abort it is
            return api.ABORTED
        if nova in FINAL_STATUS:
            return FINAL_STATUS[nova]
        if nova == POSTCOPY:
            return api.SWITCHED_OVER
        total, processed, remaining = track.memory
        disk_left = track.disk[2]
        if (nova == 'running' and total > 0 and disk_left == 0 and processed >= total
                and remaining <= self.converged_mib * MIB and not track.steered_by_libvirt):
            # (libvirt has no held state: seen by its own figures, it switches over by
            # itself, and forcing it would be a pause)
            return api.HELD
        return api.MIGRATING

    def _read_libvirt(self, track: _Track, now: float) -> None:
        """Steer from the source's libvirt job, where an agent reads it: Nova saves its
        migration record every 5 s, and the first one is all zeros (a planner reading 0
        left would cap every member at a trickle). A guest gone from its source has
        switched over (libvirt removes it there the instant it does)."""
        stats = getattr(self.actuator, 'stats', None)
        if stats is None:
            return
        try:
            job = stats(track.server_id, track.source or '')
        except exception.CloudError as exc:
            track.libvirt = None
            if isinstance(getattr(exc, 'cause', None), exception.DomainNotFound):
                track.extra.setdefault('left_source', now)
            else:
                LOG.debug('%s: no libvirt figures this tick: %s', track.member, exc)
            return
        if not job.get('active') or not job.get('memory_total_mib'):
            track.libvirt = None  # no job yet (Nova prepares it), or it has just ended
            return
        track.libvirt = job
        track.steered_by_libvirt = True
        track.memory = tuple(int((job.get(f'memory_{part}_mib') or 0.0) * MIB)
                             for part in ('total', 'processed', 'remaining'))

    def _read_final(self, track: _Track) -> None:
        """The true switchover instant, downtime and bytes, from what the destination's
        libvirtd (and, for what it lacks, the source's) said of this migration."""
        record = getattr(self.actuator, 'record', None)
        if record is None or 'completed' in track.final:
            return
        since = track.started_at - CLOCK_SKEW_S
        for host in (track.destination, track.source):
            if not host:
                continue
            try:
                seen = record(track.server_id, host)
            except exception.CloudError as exc:
                LOG.debug('%s: no migration record from %s: %s', track.member, host, exc)
                continue
            if host == track.destination and (seen.get('resumed_at') or 0.0) >= since:
                track.final.setdefault('resumed_at', seen['resumed_at'])
            if (seen.get('completed_at') or 0.0) >= since and seen.get('completed'):
                track.final.setdefault('completed', seen['completed'])
            if 'completed' in track.final:
                return

    def _sample(self, track: _Track, now: float) -> None:
        total, processed, _ = track.memory
        wire = (processed + track.disk[1]) / MIB
        if track.sample is not None and now > track.sample[0]:
            track.throughput = max(0.0, (wire - track.sample[1]) / (now - track.sample[0]))
        track.sample = (now, wire)
        rnd = -1 if track.disk[2] > 0 else (int(processed // total) if total else 0)
        if rnd != track.round or track.round_started_at is None:
            track.round_started_at = now
        track.round = rnd

    def _progress(self, t: _Track) -> api.Progress:
        dirty = None
        if self.actuator is not None and t.status in (api.MIGRATING, api.HELD):
            try:
                dirty = self.actuator.dirty_rate(t.server_id, t.source or '')
            except exception.CloudError as exc:
                LOG.debug('%s: no dirty rate: %s', t.member, exc)
        moving = t.status in (api.MIGRATING, api.HELD)
        throughput = t.throughput
        rnd = t.round
        if t.libvirt is not None:
            throughput = t.libvirt.get('throughput_mibps') or 0.0
            if t.libvirt.get('iteration'):
                rnd = max(0, int(t.libvirt['iteration']) - 1)
        wire = (t.memory[1] + t.disk[1]) / MIB
        done = t.final.get('completed') or {}
        if done.get('memory_processed_mib') is not None:
            wire = done['memory_processed_mib'] + t.disk[1] / MIB
        downtime = done.get('downtime_ms')
        return api.Progress(
            member=t.member, status=t.status,
            disk_remaining_mib=t.disk[2] / MIB,
            memory_remaining_mib=(t.memory[2] if t.memory[0] else 0) / MIB,
            round=rnd, wire_mib=wire,
            throughput_mibps=throughput if moving else 0.0,
            dirty_rate_mibps=dirty, started_at=t.started_at,
            round_started_at=t.round_started_at, switchover_at=t.switchover_at,
            downtime_s=None if downtime is None else downtime / 1000.0,
            finished_at=t.finished_at)

    # -- helpers ------------------------------------------------------------------------

    def _server_id(self, member: str) -> str:
        try:
            return self.servers[member]
        except KeyError:
            raise exception.CloudError(f'unknown member {member!r}') from None

    def _running(self, member: str) -> _Track:
        self._server_id(member)
        track = self._tracks.get(member)
        if track is None:
            raise exception.CloudError(f'{member} has no migration in progress')
        return track

    def _note(self, text: str) -> None:
        if text not in self._notes:
            self._notes.append(text)

    def _note_mode(self, mode: str) -> None:
        self._note(f'force-complete asked for {mode}: Nova chooses pause or post-copy by the '
                   "compute host's [libvirt] live_migration_permit_post_copy, not per call")


def _instant(text) -> float | None:
    """Seconds since the epoch of one of Nova's timestamps (UTC, with or without zone)."""
    if not text:
        return None
    try:
        t = datetime.datetime.fromisoformat(str(text).replace('Z', '+00:00'))
    except ValueError:
        return None
    if t.tzinfo is not None:
        return t.timestamp()
    return calendar.timegm(t.timetuple()) + t.microsecond / 1e6


def _bytes(record, kind: str) -> tuple[int, int, int]:
    return tuple(int(getattr(record, f'{kind}_{part}_bytes', None) or 0)
                 for part in ('total', 'processed', 'remaining'))
