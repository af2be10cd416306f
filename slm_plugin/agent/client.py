"""The engine's side of the SLM agents: measurements for planning, bandwidth control.

* ``AgentClient``: RPC calls to the agent of one host, with the agent's errors
  raised again as the same ``AgentError`` classes, and ``AgentUnavailable``
  when no agent answers in time.
* ``AgentCollector`` (stevedore ``slm_plugin.collectors``: ``agent``): memory,
  disks, CPU use and dirty rate of each server, from the agents of their hosts.
  A host without an agent is no error: its servers are planned with the
  scenario's estimates and the result says so.
* ``AgentActuator``: ``set_cap``, ``hold``, ``force_complete``, ``stats``,
  ``record`` and ``dirty_rate`` of a migration, by the agent of its source host; the actuator a
  Cloud (NovaCloud's ``BandwidthActuator``, or LibvirtCloud's) takes.
  ``actuator_for`` gives one only when every source host has an agent: without
  agents there is no bandwidth control, and the caller is told so instead of a
  pretence of it.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import oslo_messaging
from oslo_log import log as logging

from slm_plugin import context as slm_context
from slm_plugin import exception
from slm_plugin.common import messaging
from slm_plugin.common import retry as retries
from slm_plugin.scenario.model import Scenario

LOG = logging.getLogger(__name__)

#: agent calls that are safe to repeat when no answer came (they read, or set a value):
#: repeated by the RPC retry policy. A probe (ping) is not: it exists to be quick.
REPEATABLE = frozenset({'host_info', 'list_domains', 'domain_stats', 'migration_stats',
                        'migration_record', 'set_max_speed', 'set_max_downtime', 'hold'})


class AgentClient:
    """Calls the agent of a host; one oslo.messaging client per host, made on first use.

    A host whose agent did not answer is *away*: for the next ``[agent]
    probe_timeout`` seconds its calls fail at once with the same
    AgentUnavailable, and the first call after that waits only that long, once.
    Without this, every cap the control loop sends to a killed agent would hold
    the loop (and so every other member's steering) for ``rpc_timeout`` times
    ``rpc_retry_attempts`` seconds.
    """

    def __init__(self, conf, timeout: float | None = None, clock=time.monotonic):
        self.conf = conf
        self.timeout = timeout if timeout is not None else conf.agent.rpc_timeout
        self._clients: dict[str, object] = {}
        self._lock = threading.Lock()
        self._retry = retries.RetryPolicy.for_rpc(conf)
        self._clock = clock
        self._away: dict[str, tuple[float, str]] = {}  # host -> (since, why)

    def _client(self, host: str):
        with self._lock:
            client = self._clients.get(host)
            if client is None:
                client = self._clients[host] = messaging.get_rpc_client(
                    self.conf, messaging.agent_topic(self.conf, host), timeout=self.timeout)
            return client

    def call(self, host: str, method: str, timeout: float | None = None, **kwargs):
        client = self._client(host)
        probe = self.conf.agent.probe_timeout
        away = self._away.get(host)
        if away is not None:
            since, why = away
            if self._clock() - since < probe:
                raise exception.AgentUnavailable(f'{why}; not asked again for {probe} s')
            timeout = min(timeout or self.timeout, probe)  # once, and briefly
        if timeout is not None:
            client = client.prepare(timeout=timeout)
        context = slm_context.get_admin_context()
        try:
            if method in REPEATABLE and away is None:
                answer = self._retry.call(client.call, context, method,
                                          what=f'{method} on the agent of {host}', **kwargs)
            else:
                answer = client.call(context, method, **kwargs)
        except oslo_messaging.MessagingTimeout:
            why = (f'no SLM agent answered on host {host} within '
                   f'{timeout or self.timeout:g} s ({method})')
            self._away[host] = (self._clock(), why)
            raise exception.AgentUnavailable(why) from None
        except oslo_messaging.RemoteError as exc:
            self._away.pop(host, None)  # it answered, with an error
            cls = exception.AGENT_ERRORS.get(exc.exc_type)
            if cls is None:
                raise exception.AgentError(
                    f'agent on {host}: {method} failed: {exc.exc_type}: {exc.value}') from None
            raise cls(exc.value) from None
        except oslo_messaging.MessagingException as exc:
            raise exception.AgentUnavailable(
                f'agent on host {host} unreachable ({method}): {exc}') from None
        if self._away.pop(host, None) is not None:
            LOG.info('The SLM agent on host %s answers again', host)
        return answer

    def ping(self, host: str, timeout: float | None = None) -> dict:
        return self.call(host, 'ping', timeout=timeout or self.conf.agent.probe_timeout)


@dataclass(frozen=True, slots=True)
class Measurement:
    """One server as its host's agent sees it."""

    instance_uuid: str
    host: str
    memory_mib: float | None = None
    disk_mib: float | None = None  # the disks' capacity
    vcpus: int | None = None
    cpu_use: float | None = None  # busy vCPUs (1.0 = one vCPU fully busy)
    dirty_rate_mibps: float | None = None  # None: not measured (see the notes)


@dataclass(frozen=True)
class Collection:
    measurements: dict[str, Measurement]  # instance UUID -> what was measured
    notes: tuple[str, ...] = ()
    hosts_without_agent: frozenset[str] = field(default_factory=frozenset)


class AgentCollector:
    """Measures servers through the agents of their hosts (stevedore name ``agent``)."""

    name = 'agent'

    def __init__(self, conf, client: AgentClient | None = None):
        self.conf = conf
        self.client = client or AgentClient(conf)

    def probe(self, hosts: Iterable[str]) -> tuple[set[str], list[str]]:
        """Hosts whose agent answers, and a note for each that does not."""
        ok, notes = set(), []
        for host in sorted(set(hosts)):
            try:
                answer = self.client.ping(host)
            except exception.AgentError as exc:
                notes.append(f'no SLM agent on {host}: {exc}')
                continue
            if not answer.get('hypervisor', True):
                notes.append(f"the SLM agent on {host} cannot reach libvirtd: "
                             f"{answer.get('error', 'unknown error')}")
                continue
            ok.add(host)
        return ok, notes

    def collect(self, instances: Mapping[str, str], dirty_rates: bool = True) -> Collection:
        """Measure each server (instance UUID -> host). Dirty rates are measured on all
        of a host's servers at once (each takes ``[agent] dirty_rate_seconds``)."""
        hosts, notes = self.probe(instances.values())
        missing = {h for h in instances.values() if h not in hosts}
        out: dict[str, Measurement] = {}
        rates: dict[str, float | None] = {}
        threads = []
        if dirty_rates:
            for uuid, host in instances.items():
                if host in hosts:
                    t = threading.Thread(target=self._dirty, args=(uuid, host, rates, notes))
                    t.start()
                    threads.append(t)
        for uuid, host in instances.items():
            if host not in hosts:
                out[uuid] = Measurement(uuid, host)
                continue
            try:
                stats = self.client.call(host, 'domain_stats', instance_uuid=uuid)
            except exception.AgentError as exc:
                notes.append(f'{uuid} on {host}: no statistics: {exc}')
                out[uuid] = Measurement(uuid, host)
                continue
            disks = [d['capacity_mib'] for d in stats.get('disks', ())
                     if d.get('capacity_mib') is not None]
            out[uuid] = Measurement(uuid, host, memory_mib=stats.get('memory_mib'),
                                    disk_mib=sum(disks) if disks else None,
                                    vcpus=stats.get('vcpus'), cpu_use=stats.get('cpu_use'))
        for t in threads:
            t.join()
        for uuid, rate in rates.items():
            out[uuid] = dataclasses.replace(out[uuid], dirty_rate_mibps=rate)
        unmeasured = sorted(u for u, m in out.items() if m.dirty_rate_mibps is None)
        if missing:
            count = sum(1 for h in instances.values() if h in missing)
            notes.append(f"planning without measured dirty rates for {count} server(s) on "
                         f"{', '.join(sorted(missing))} (no agent): the scenario's estimates "
                         "are used")
        elif dirty_rates and unmeasured:
            notes.append(f"no dirty rate measured for {len(unmeasured)} server(s): the "
                         "scenario's estimates are used for them")
        for note in notes:
            LOG.warning('%s', note)
        return Collection(out, tuple(notes), frozenset(missing))

    def _dirty(self, uuid, host, rates, notes) -> None:
        seconds = self.conf.agent.dirty_rate_seconds
        try:
            rates[uuid] = float(self.client.call(
                host, 'dirty_rate', timeout=self.client.timeout + seconds,
                instance_uuid=uuid, seconds=seconds))
        except exception.AgentError as exc:
            rates[uuid] = None
            notes.append(f'{uuid} on {host}: dirty rate not measured: {exc}')


def with_measurements(scenario: Scenario, collection: Collection,
                      uuid_of: Mapping[str, str]) -> Scenario:
    """The scenario with each member's measured dirty rate (and memory) in place of the
    estimate; members without a measurement keep theirs. ``uuid_of``: member -> UUID."""
    groups = []
    for g in scenario.groups:
        members = []
        for m in g.members:
            meas = collection.measurements.get(uuid_of.get(m.name, ''))
            vm = m.vm
            if meas is not None and meas.dirty_rate_mibps is not None:
                vm = dataclasses.replace(vm, dirty_rate_mibps=meas.dirty_rate_mibps)
            if meas is not None and meas.memory_mib:
                vm = dataclasses.replace(vm, memory_mib=meas.memory_mib)
            members.append(dataclasses.replace(m, vm=vm))
        groups.append(dataclasses.replace(g, members=tuple(members)))
    return dataclasses.replace(scenario, groups=tuple(groups))


class AgentActuator:
    """Bandwidth control of a migration by the agent of its source host.

    Fits NovaCloud's ``BandwidthActuator`` and LibvirtCloud's actuator. Every
    method raises ``exception.ActuatorError`` (a CloudError) when the agent refuses or does
    not answer. ``dirty_rate`` is cheap (one statistics call): QEMU's own measure
    once the migration has synced twice, before that the last measurement handed
    to ``remember`` (e.g. from AgentCollector), else None.
    """

    def __init__(self, conf=None, client: AgentClient | None = None):
        if client is None and conf is None:
            raise ValueError('AgentActuator needs a configuration or a client')
        self.client = client or AgentClient(conf)
        self._measured: dict[str, float] = {}

    def _call(self, what: str, host: str, method: str, **kwargs):
        try:
            return self.client.call(host, method, **kwargs)
        except exception.AgentError as exc:
            raise exception.ActuatorError(f'{what}: {exc}', exc) from None

    def set_cap(self, instance_uuid: str, host: str, cap_mibps: float | None) -> None:
        self._call(f'max speed of {instance_uuid}', host, 'set_max_speed',
                   instance_uuid=instance_uuid, cap_mibps=cap_mibps)

    def hold(self, instance_uuid: str, host: str, held: bool) -> None:
        self._call(f"{'hold' if held else 'release'} of {instance_uuid}", host, 'hold',
                   instance_uuid=instance_uuid, held=held)

    def force_complete(self, instance_uuid: str, host: str, mode: str) -> None:
        self._call(f'force-complete of {instance_uuid}', host, 'force_complete',
                   instance_uuid=instance_uuid, mode=mode)

    def stats(self, instance_uuid: str, host: str) -> dict:
        return self._call(f'statistics of {instance_uuid}', host, 'migration_stats',
                          instance_uuid=instance_uuid)

    def abort(self, instance_uuid: str, host: str) -> None:
        self._call(f'abort of {instance_uuid}', host, 'abort', instance_uuid=instance_uuid)

    def record(self, instance_uuid: str, host: str) -> dict:
        """What ``host``'s libvirtd said of the guest's last migration (agent 1.1:
        ``ledger.MigrationLedger.record``)."""
        return self._call(f'migration record of {instance_uuid}', host, 'migration_record',
                          instance_uuid=instance_uuid)

    def remember(self, instance_uuid: str, dirty_rate_mibps: float | None) -> None:
        if dirty_rate_mibps is not None:
            self._measured[instance_uuid] = dirty_rate_mibps

    def dirty_rate(self, instance_uuid: str, host: str) -> float | None:
        stats = self.stats(instance_uuid, host)
        if stats.get('active') and (stats.get('iteration') or 0) >= 2:
            return stats.get('dirty_rate_mibps')
        return self._measured.get(instance_uuid)


def actuator_for(conf, source_hosts: Iterable[str], client: AgentClient | None = None):
    """An AgentActuator when every source host has an agent, else None and why.

    Without it a Cloud can still migrate, but it cannot cap, hold or force-complete:
    the planner's caps would be a pretence, so the caller must run uncontrolled (or
    refuse) and report the note.
    """
    collector = AgentCollector(conf, client)
    ok, notes = collector.probe(source_hosts)
    missing = sorted(set(source_hosts) - ok)
    if missing:
        notes.append(f"bandwidth control is not available: no working SLM agent on "
                     f"{', '.join(missing)}; the migrations run uncapped and unsynchronized")
        return None, notes
    return AgentActuator(client=collector.client), notes
