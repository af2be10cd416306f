"""What a host's libvirtd said of each guest's last migration, from its domain events.

Nova cannot tell the true figures of a live migration: it records the end
seconds after the switchover (its migration record is saved every 5 s, and
``completed`` comes after its post-migration steps), and neither the downtime
nor what libvirt really sent. libvirt removes a migrated guest from its
source the instant it switches over, so its statistics cannot be asked for
there afterwards. Its events carry them:

* on the destination, ``resumed`` (migrated, or post-copy) is the switchover;
* on the source, ``suspended`` (migrated) is where the downtime begins, and
  ``suspended`` (post-copy) where post-copy begins;
* ``job-completed`` (either side) brings the job's final statistics: the
  downtime and the bytes sent.

The ledger keeps the latest of each per guest, with the wall-clock instant it
arrived (seconds since the epoch, as the engine's clock: hosts and engines
keep their clocks in step, as Nova's own timestamps assume). It needs
libvirt's event loop running (``driver.start_event_loop``) before the
connection is opened, and registers again whenever the driver reconnects.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

import libvirt
from oslo_log import log as logging

from slm_plugin.agent import driver as agent_driver

LOG = logging.getLogger(__name__)

#: Guests remembered per host (the oldest are forgotten first)
KEEP = 512

#: (lifecycle event, detail) -> what it says of a migration, on the side it arrives
MIGRATION_EVENTS = {
    (libvirt.VIR_DOMAIN_EVENT_RESUMED, libvirt.VIR_DOMAIN_EVENT_RESUMED_MIGRATED): 'resumed',
    (libvirt.VIR_DOMAIN_EVENT_RESUMED, libvirt.VIR_DOMAIN_EVENT_RESUMED_POSTCOPY): 'resumed',
    (libvirt.VIR_DOMAIN_EVENT_SUSPENDED, libvirt.VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED): 'paused',
    (libvirt.VIR_DOMAIN_EVENT_SUSPENDED, libvirt.VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY): 'postcopy',
    (libvirt.VIR_DOMAIN_EVENT_STARTED, libvirt.VIR_DOMAIN_EVENT_STARTED_MIGRATED): 'incoming',
}


def migration_event(event: int, detail: int) -> str | None:
    """What a lifecycle event says of a migration: incoming (the destination's guest
    starts), paused (the source stops for the switchover), postcopy (the source
    stops for post-copy), resumed (the destination runs it); None for the rest."""
    return MIGRATION_EVENTS.get((event, detail))


class MigrationLedger:
    """The migration events of one LibvirtDriver's libvirtd, per guest UUID."""

    def __init__(self, driver: agent_driver.LibvirtDriver,
                 clock: Callable[[], float] = time.time, keep: int = KEEP):
        self.driver = driver
        self._clock = clock
        self._keep = keep
        self._lock = threading.Lock()
        self._seen: OrderedDict[str, dict] = OrderedDict()
        self.events = 0  # lifecycle events received, migrations or not
        driver.on_connect(self._register)

    def record(self, uuid: str) -> dict:
        """What this host saw of the guest's last migration: any of ``incoming_at``,
        ``paused_at``, ``postcopy_at``, ``resumed_at`` (epoch seconds), ``completed_at``
        and ``completed`` (the job's final statistics, as ``driver.job_stats`` gives
        them); empty when nothing was seen."""
        with self._lock:
            return dict(self._seen.get(uuid, {}))

    def _register(self, conn: libvirt.virConnect) -> None:
        # (one callback per event on a connection: libvirt refuses a second one)
        for event, handler in ((libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._lifecycle),
                               (libvirt.VIR_DOMAIN_EVENT_ID_JOB_COMPLETED, self._completed)):
            try:
                conn.domainEventRegisterAny(None, event, handler, None)
            except libvirt.libvirtError as exc:
                LOG.warning('no migration events from %s: %s', self.driver.uri,
                            exc.get_error_message() or exc)

    def _entry(self, dom) -> dict | None:
        try:
            uuid = dom.UUIDString()
        except libvirt.libvirtError:
            return None
        entry = self._seen.pop(uuid, {})
        self._seen[uuid] = entry  # the newest last
        while len(self._seen) > self._keep:
            self._seen.popitem(last=False)
        return entry

    def _lifecycle(self, _conn, dom, event, detail, _opaque) -> None:
        self.events += 1
        kind = migration_event(event, detail)
        if kind is None:
            return
        now = self._clock()
        with self._lock:
            entry = self._entry(dom)
            if entry is None:
                return
            if kind == 'incoming':
                entry.clear()  # a new migration arrives: forget the last one's figures
            entry.setdefault(f'{kind}_at', now)

    def _completed(self, _conn, dom, params, _opaque) -> None:
        now = self._clock()
        with self._lock:
            entry = self._entry(dom)
            if entry is not None:
                entry['completed_at'] = now
                entry['completed'] = agent_driver.job_stats(params, libvirt.VIR_DOMAIN_RUNNING,
                                                            0)
