"""The agent's libvirt logic: what a compute host can measure and do about its guests.

A thin class over one libvirt connection, usable without RPC (the agent's RPC
endpoint and ``LibvirtCloud`` are shells around it) and testable against
libvirt's test driver. Guests are named by their UUID, which for Nova is the
instance UUID. Units: MiB, MiB/s, seconds and milliseconds where the name
says ``_ms``.

* Inventory: memory, disks, vCPUs and CPU use of each guest.
* Dirty rate: libvirt's dirty-rate calculation in page-sampling mode (the mode
  that works under TCG and without dirty rings).
* A running migration: memory processed and remaining, throughput, QEMU's dirty
  rate, the iteration (dirty-sync count), whether it is in post-copy.
* Actions: max speed, max downtime, hold (a tiny max downtime so that QEMU keeps
  iterating) and release, force-complete by post-copy or by stopping the guest,
  abort.

Every libvirt error becomes an ``AgentError`` subclass with a clear message; a
connection that libvirtd dropped (it restarted) is opened again and the call
retried once.
"""

from __future__ import annotations

import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable

import libvirt
from oslo_log import log as logging

from slm_plugin import exception

LOG = logging.getLogger(__name__)

MIB = 1024 * 1024
UNLIMITED_MIBPS = 8796093022207  # libvirt's QEMU maximum (INT64_MAX bytes/s in MiB/s)
DEFAULT_DOWNTIME_MS = 300  # QEMU's default downtime limit
HOLD_DOWNTIME_MS = 1
PAUSE_DOWNTIME_MS = 2_000_000  # QEMU's largest: stop the guest at the next check
MODES = ('pause', 'postcopy')

# libvirt error codes that mean the connection to libvirtd is gone
_CONNECTION_ERRORS = {
    libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_ERR_RPC, libvirt.VIR_ERR_INVALID_CONN,
    libvirt.VIR_ERR_NO_CONNECT,
}
_NOT_SUPPORTED = {
    libvirt.VIR_ERR_NO_SUPPORT, libvirt.VIR_ERR_OPERATION_UNSUPPORTED,
    libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED, libvirt.VIR_ERR_CONFIG_UNSUPPORTED,
}

_JOB_TYPES = {
    libvirt.VIR_DOMAIN_JOB_NONE: 'none', libvirt.VIR_DOMAIN_JOB_BOUNDED: 'bounded',
    libvirt.VIR_DOMAIN_JOB_UNBOUNDED: 'unbounded', libvirt.VIR_DOMAIN_JOB_COMPLETED: 'completed',
    libvirt.VIR_DOMAIN_JOB_FAILED: 'failed', libvirt.VIR_DOMAIN_JOB_CANCELLED: 'cancelled',
}


def _quiet(_ctx, _err):
    """libvirt prints every error on stderr by default; ours are raised instead."""


libvirt.registerErrorHandler(_quiet, None)

_EVENT_LOOP: threading.Thread | None = None
_EVENT_LOCK = threading.Lock()


def start_event_loop() -> None:
    """Run libvirt's default event loop in a daemon thread (once per process).

    Needed for domain events and close callbacks; call it before opening the
    connections whose events you want.
    """
    global _EVENT_LOOP
    with _EVENT_LOCK:
        if _EVENT_LOOP is not None:
            return
        libvirt.virEventRegisterDefaultImpl()

        def run():
            while True:
                libvirt.virEventRunDefaultImpl()

        _EVENT_LOOP = threading.Thread(target=run, name='libvirt-events', daemon=True)
        _EVENT_LOOP.start()


def translate(exc: libvirt.libvirtError, what: str) -> exception.AgentError:
    """The AgentError for a libvirt error met while doing ``what``."""
    code = exc.get_error_code()
    text = exc.get_error_message() or str(exc)
    if code in _CONNECTION_ERRORS:
        return exception.HypervisorUnavailable(f'{what}: libvirtd is unreachable: {text}')
    if code == libvirt.VIR_ERR_NO_DOMAIN:
        return exception.DomainNotFound(f'{what}: no such guest on this host: {text}')
    if code in _NOT_SUPPORTED:
        return exception.NotSupported(f'{what}: not supported by this hypervisor: {text}')
    if code == libvirt.VIR_ERR_INVALID_ARG:
        return exception.InvalidRequest(f'{what}: {text}')
    if code == libvirt.VIR_ERR_OPERATION_INVALID:
        if 'not being migrated' in text or 'no job' in text or 'can only be started' in text:
            return exception.NoMigration(f'{what}: {text}')
        return exception.InvalidRequest(f'{what}: {text}')
    return exception.OperationFailed(f'{what}: {text}')


class LibvirtDriver:
    """One libvirt connection and what the agent does with it."""

    def __init__(self, uri: str, hold_downtime_ms: int = HOLD_DOWNTIME_MS,
                 opener: Callable[[str], libvirt.virConnect] = libvirt.open,
                 clock: Callable[[], float] = time.monotonic):
        self.uri = uri
        self.hold_downtime_ms = hold_downtime_ms
        self._open = opener
        self._clock = clock
        self._conn: libvirt.virConnect | None = None
        self._lock = threading.RLock()
        self._cpu: dict[str, tuple[float, int]] = {}  # uuid -> (instant, cpu time ns)
        self._held: dict[str, int] = {}  # uuid -> downtime limit before the hold
        self._connect_hooks: list[Callable[[libvirt.virConnect], None]] = []

    # -- connection ------------------------------------------------------------------

    def on_connect(self, hook: Callable[[libvirt.virConnect], None]) -> None:
        """Call ``hook(connection)`` on every connection opened from now on (event
        callbacks die with their connection), and on the open one now."""
        with self._lock:
            self._connect_hooks.append(hook)
            if self._conn is not None:
                hook(self._conn)

    def connection(self) -> libvirt.virConnect:
        with self._lock:
            conn = self._conn
            if conn is not None:
                try:
                    if conn.isAlive():
                        return conn
                except libvirt.libvirtError:
                    pass
                LOG.info('connection to %s lost; reconnecting', self.uri)
                self._drop()
            try:
                self._conn = self._open(self.uri)
            except libvirt.libvirtError as exc:
                raise exception.HypervisorUnavailable(
                    f'cannot connect to {self.uri}: {exc.get_error_message() or exc}') from None
            for hook in self._connect_hooks:
                hook(self._conn)
            return self._conn

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except libvirt.libvirtError:
                pass

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _call(self, what: str, fn: Callable[[libvirt.virConnect], object]):
        """fn(connection), with libvirt errors translated; reconnects and retries once."""
        for attempt in (1, 2):
            conn = self.connection()
            try:
                return fn(conn)
            except libvirt.libvirtError as exc:
                err = translate(exc, what)
                if isinstance(err, exception.HypervisorUnavailable) and attempt == 1:
                    LOG.info('%s: %s; reconnecting to %s', what, err, self.uri)
                    with self._lock:
                        if self._conn is conn:
                            self._drop()
                    continue
                raise err from None
        raise AssertionError('unreachable')

    def _domain(self, conn: libvirt.virConnect, uuid: str) -> libvirt.virDomain:
        try:
            return conn.lookupByUUIDString(uuid)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                raise exception.DomainNotFound(
                    f'no guest with UUID {uuid} on {self.uri}') from None
            raise

    def _on_domain(self, what: str, uuid: str, fn: Callable[[libvirt.virDomain], object]):
        return self._call(f'{what} of {uuid}', lambda conn: fn(self._domain(conn, uuid)))

    # -- inventory ---------------------------------------------------------------------

    def host_info(self) -> dict:
        def get(conn):
            model, memory_mib, cpus, *_ = conn.getInfo()
            return {'hostname': conn.getHostname(), 'uri': self.uri, 'cpu_model': model,
                    'memory_mib': float(memory_mib), 'cpus': cpus,
                    'libvirt_version': conn.getLibVersion(), 'hypervisor': conn.getType()}
        return self._call('host information', get)

    def list_domains(self) -> list[dict]:
        def get(conn):
            return [self._inventory(dom) for dom in conn.listAllDomains()]
        return self._call('list of guests', get)

    def domain_stats(self, uuid: str) -> dict:
        """Memory, disks, vCPUs and CPU use of one guest."""
        return self._on_domain('statistics', uuid, self._inventory)

    def _inventory(self, dom: libvirt.virDomain) -> dict:
        state, max_kib, kib, vcpus, cpu_ns = dom.info()
        uuid = dom.UUIDString()
        now = self._clock()
        before = self._cpu.get(uuid)
        self._cpu[uuid] = (now, cpu_ns)
        cpu_use = None
        if before is not None and now > before[0] and cpu_ns >= before[1]:
            # busy vCPUs: 1.0 is one vCPU fully busy
            cpu_use = (cpu_ns - before[1]) / 1e9 / (now - before[0])
        return {
            'uuid': uuid, 'name': dom.name(), 'state': state, 'active': bool(dom.isActive()),
            'memory_mib': kib / 1024, 'max_memory_mib': max_kib / 1024, 'vcpus': vcpus,
            'cpu_time_s': cpu_ns / 1e9, 'cpu_use': cpu_use, 'disks': self._disks(dom),
        }

    def _disks(self, dom: libvirt.virDomain) -> list[dict]:
        out = []
        root = ET.fromstring(dom.XMLDesc(0))
        for disk in root.findall('./devices/disk'):
            if disk.get('device', 'disk') != 'disk':
                continue
            target = disk.find('target')
            if target is None or not target.get('dev'):
                continue
            dev = target.get('dev')
            source = disk.find('source')
            path = None if source is None else (source.get('file') or source.get('dev')
                                                or source.get('name'))
            row = {'target': dev, 'source': path, 'capacity_mib': None, 'allocation_mib': None}
            try:
                capacity, allocation, _physical = dom.blockInfo(dev, 0)
                row['capacity_mib'] = capacity / MIB
                row['allocation_mib'] = allocation / MIB
            except libvirt.libvirtError as exc:
                row['error'] = exc.get_error_message() or str(exc)
            out.append(row)
        return out

    # -- dirty rate ----------------------------------------------------------------------

    def dirty_rate(self, uuid: str, seconds: int = 1, timeout: float | None = None) -> float:
        """The guest's dirty rate in MiB/s, measured now over ``seconds`` (page sampling)."""
        seconds = int(seconds)
        if seconds < 1:
            raise exception.InvalidRequest(f'dirty-rate period must be at least 1 s, got {seconds}')
        self._on_domain('dirty-rate calculation', uuid, lambda dom: dom.startDirtyRateCalc(
            seconds, libvirt.VIR_DOMAIN_DIRTYRATE_MODE_PAGE_SAMPLING))
        deadline = self._clock() + (timeout if timeout is not None else seconds + 10)
        while True:
            time.sleep(min(0.2, seconds / 4))
            stats = self._on_domain('dirty-rate result', uuid, _dirty_stats)
            if stats.get('dirtyrate.calc_status') == 2:  # VIR_DOMAIN_DIRTYRATE_MEASURED
                return float(stats.get('dirtyrate.megabytes_per_second', 0))
            if self._clock() > deadline:
                raise exception.OperationFailed(
                    f'dirty-rate calculation of {uuid} gave no result within {seconds + 10} s')

    # -- a migration -----------------------------------------------------------------------

    def migration_stats(self, uuid: str) -> dict:
        """The guest's running migration job (``active`` False when there is none)."""
        def get(dom):
            stats = dom.jobStats(0)
            state, reason = dom.state()
            return job_stats(stats, state, reason)
        return self._on_domain('migration statistics', uuid, get)

    def completed_stats(self, uuid: str) -> dict:
        """Statistics of the guest's last completed job (on either side of a migration)."""
        def get(dom):
            return job_stats(dom.jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED), *dom.state())
        return self._on_domain('completed-job statistics', uuid, get)

    def set_max_speed(self, uuid: str, cap_mibps: float | None) -> int:
        """Throttle the guest's migration (None: unlimited). libvirt takes whole MiB/s."""
        value = _speed(cap_mibps)
        self._on_domain('max speed', uuid, lambda dom: dom.migrateSetMaxSpeed(value, 0))
        return value

    def get_max_speed(self, uuid: str) -> int:
        return self._on_domain('max speed', uuid, lambda dom: dom.migrateGetMaxSpeed(0))

    def set_max_downtime(self, uuid: str, downtime_ms: int) -> None:
        downtime_ms = int(downtime_ms)
        if downtime_ms < 1:
            raise exception.InvalidRequest(f'max downtime must be at least 1 ms, got {downtime_ms}')
        self._on_domain('max downtime', uuid,
                        lambda dom: dom.migrateSetMaxDowntime(downtime_ms, 0))

    def get_max_downtime(self, uuid: str) -> int:
        def get(dom):
            value = dom.migrateGetMaxDowntime(0)
            if value is None:  # the binding returns None on failure; the error is libvirt's last
                raise libvirt.libvirtError('virDomainMigrateGetMaxDowntime failed')
            return value
        return self._on_domain('max downtime', uuid, get)

    def hold(self, uuid: str, held: bool) -> None:
        """Keep the migration iterating (tiny max downtime) or restore the downtime it had.

        QEMU switches over when what is dirty fits the downtime limit at the measured
        bandwidth; a 1 ms limit makes that rare for a guest that keeps writing, but an
        almost idle guest may still converge by itself (QEMU has no hard hold).
        """
        with self._lock:
            if held:
                if uuid not in self._held:
                    before = self.get_max_downtime(uuid)
                    if before <= self.hold_downtime_ms:
                        before = DEFAULT_DOWNTIME_MS
                    self._held[uuid] = before
                self.set_max_downtime(uuid, self.hold_downtime_ms)
            else:
                restore = self._held.pop(uuid, None)
                if restore is None:
                    current = self.get_max_downtime(uuid)
                    restore = current if current > self.hold_downtime_ms else DEFAULT_DOWNTIME_MS
                self.set_max_downtime(uuid, restore)

    def start_postcopy(self, uuid: str) -> None:
        self._on_domain('start of post-copy', uuid, lambda dom: dom.migrateStartPostCopy(0))

    def force_complete(self, uuid: str, mode: str) -> None:
        """Finish now: switch to post-copy, or stop the guest and copy what is dirty."""
        if mode not in MODES:
            raise exception.InvalidRequest(
                f"force-complete mode must be one of {', '.join(MODES)}, got {mode!r}")
        stats = self.migration_stats(uuid)
        if not stats['active']:
            raise exception.NoMigration(f'force-complete of {uuid}: no migration is running')
        with self._lock:
            self._held.pop(uuid, None)
        if mode == 'postcopy':
            self.start_postcopy(uuid)
        else:
            # QEMU stops the guest at its next check and sends what is dirty
            self.set_max_downtime(uuid, PAUSE_DOWNTIME_MS)

    def abort(self, uuid: str) -> None:
        with self._lock:
            self._held.pop(uuid, None)
        self._on_domain('abort of the migration', uuid, lambda dom: dom.abortJob())

    def migrate(self, uuid: str, peer_uri: str, params: dict, flags: int) -> None:
        """Peer-to-peer live migration (blocks until it ends); what Nova's driver does."""
        self._on_domain('migration', uuid,
                        lambda dom: dom.migrateToURI3(peer_uri, params, flags))

    def migratable_xml(self, uuid: str) -> str:
        return self._on_domain('migratable XML', uuid,
                               lambda dom: dom.XMLDesc(libvirt.VIR_DOMAIN_XML_MIGRATABLE))


def _dirty_stats(dom: libvirt.virDomain) -> dict:
    conn = dom.connect()
    rows = conn.domainListGetStats([dom], libvirt.VIR_DOMAIN_STATS_DIRTYRATE, 0)
    return rows[0][1] if rows else {}


def _speed(cap_mibps: float | None) -> int:
    if cap_mibps is None:
        return UNLIMITED_MIBPS
    try:
        cap = float(cap_mibps)
    except (TypeError, ValueError):
        raise exception.InvalidRequest(f'a cap must be a number of MiB/s, got {cap_mibps!r}') \
            from None
    if not cap > 0 or cap != cap:
        raise exception.InvalidRequest(f'a cap must be a positive number of MiB/s, got {cap_mibps}')
    return min(max(1, round(cap)), UNLIMITED_MIBPS)


def _mib(stats: dict, key: str) -> float | None:
    value = stats.get(key)
    return None if value is None else value / MIB


def job_stats(stats: dict, state: int, reason: int) -> dict:
    """libvirt's job statistics in the agent's units and names."""
    kind = stats.get('type', libvirt.VIR_DOMAIN_JOB_NONE)
    page = stats.get('memory_page_size') or 4096
    dirty_pages = stats.get('memory_dirty_rate')
    bps = stats.get('memory_bps')
    paused = state == libvirt.VIR_DOMAIN_PAUSED
    return {
        'active': kind in (libvirt.VIR_DOMAIN_JOB_BOUNDED, libvirt.VIR_DOMAIN_JOB_UNBOUNDED),
        'type': _JOB_TYPES.get(kind, str(kind)),
        'operation': stats.get('operation'),
        'time_elapsed_s': None if stats.get('time_elapsed') is None
        else stats['time_elapsed'] / 1000,
        'memory_total_mib': _mib(stats, 'memory_total'),
        'memory_processed_mib': _mib(stats, 'memory_processed'),
        'memory_remaining_mib': _mib(stats, 'memory_remaining'),
        'data_processed_mib': _mib(stats, 'data_processed'),
        'throughput_mibps': None if bps is None else bps / MIB,
        'dirty_rate_mibps': None if dirty_pages is None else dirty_pages * page / MIB,
        'iteration': stats.get('memory_iteration'),
        'constant_pages': stats.get('memory_constant'),
        'normal_pages': stats.get('memory_normal'),
        'downtime_ms': stats.get('downtime'),
        'setup_time_ms': stats.get('setup_time'),
        'postcopy_requests': stats.get('memory_postcopy_requests'),
        'paused': paused,
        'postcopy': paused and reason in (libvirt.VIR_DOMAIN_PAUSED_POSTCOPY,
                                          libvirt.VIR_DOMAIN_PAUSED_POSTCOPY_FAILED),
    }
