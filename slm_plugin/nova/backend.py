"""``[engine] cloud = nova``: the engine's jobs run on a real cloud, through the Compute API.

Groups, members and targets come from Nova (``slm_plugin.nova.discovery``);
each job drives a :class:`~slm_plugin.nova.cloud.NovaCloud` of its own,
over one openstacksdk connection shared by the driver (``[nova]``
credentials). With ``[nova] use_agent`` the SLM agents of the source hosts
measure dirty rates before the plan and carry out caps and holds.

Taking a job over works because Nova outlives the engine: the new owner
discovers the group again without re-checking the request (its members are
migrating or have arrived), and its NovaCloud ``adopt``\\ s the migrations the
job's events say were asked for, including those that ended meanwhile.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading

from openstack import exceptions as sdk_exc
from oslo_log import log as logging

from slm_plugin import exception
from slm_plugin.agent import client as agent_collector
from slm_plugin.common import retry as retries
from slm_plugin.control import cloud as api
from slm_plugin.engine.backends import Backend, GroupInfo, ServerInfo, with_options
from slm_plugin.model import CompletionPolicy
from slm_plugin.nova import compute_api
from slm_plugin.nova.cloud import NovaCloud
from slm_plugin.nova.discovery import Capacities, NovaCollector, Target
from slm_plugin.scenario.model import DIRTY_RATES_ASSUMED, Limits, note_code

LOG = logging.getLogger(__name__)

MIGRATABLE = ('ACTIVE', 'PAUSED')


def limits_from_conf(conf) -> Limits:
    """Concurrency per host from ``[engine]`` and what Nova's computes allow (``[nova]
    max_concurrent_live_migrations``), the completion policy from ``[planning]``."""
    policy = CompletionPolicy(max_downtime_s=conf.planning.allowed_downtime_ms / 1000.0,
                              max_rounds=conf.planning.max_rounds,
                              on_stall=conf.planning.non_convergence_policy)
    per_host = min(conf.engine.max_concurrent_migrations_per_host,
                   conf.nova.max_concurrent_live_migrations)
    return Limits(max_concurrent_per_host=per_host, policy=policy)


class NovaBackend(Backend):
    """Server groups of a real cloud; one NovaCloud per job, on the wall clock."""

    shared = True
    time_scale = 1.0

    def __init__(self, conf, connect=compute_api.connect):
        super().__init__(conf)
        self._connect = connect
        self._conn = None
        self._lock = threading.Lock()
        self.capacities = Capacities.from_conf(conf)  # a bad [nova] links fails at start

    @property
    def conn(self):
        with self._lock:
            if self._conn is None:
                self._conn = self._connect(self.conf)
            return self._conn

    def collector(self) -> NovaCollector:
        conn = self.conn
        return NovaCollector(conn, self.capacities, limits_from_conf(self.conf),
                             conn.compute.default_microversion or compute_api.negotiate(conn))

    # -- what the API and the engine ask -----------------------------------------------

    @contextlib.contextmanager
    def _answering(self):
        """Nova (or Keystone) unreachable or failing, after the retries: CloudUnavailable."""
        try:
            yield
        except Exception as exc:
            if retries.is_connection_error(exc) or retries.is_server_error(exc):
                raise exception.CloudUnavailable(
                    f'The Compute API did not answer: {compute_api.message(exc)}') from exc
            raise

    def find_group(self, ref: str) -> GroupInfo:
        with self._answering():
            return self._find_group(ref)

    def _find_group(self, ref: str) -> GroupInfo:
        collector = self.collector()
        try:
            group = collector.find_group(ref)
        except exception.GroupNotFound as exc:
            raise exception.GroupNotFound(_sentence(str(exc))) from None
        try:
            servers = collector.group_servers(group)
        except exception.InvalidTarget as exc:  # the group exists; its members cannot be moved
            raise exception.InvalidTarget(_sentence(str(exc))) from None
        return GroupInfo(id=group.id, name=group.name, policy=group.policy or 'none',
                         servers=tuple(ServerInfo(s.id, s.name, s.host) for s in servers))

    def groups_on_host(self, host: str) -> list[GroupInfo]:
        compute = self.conn.compute
        on_host = {s.id for s in compute.servers(details=False, all_projects=True,
                                                 compute_host=host)}
        out = []
        for group in compute.server_groups(all_projects=True):
            if on_host & set(group.member_ids or ()):
                try:
                    out.append(self.find_group(group.id))
                # deleted or emptied meanwhile
                except (exception.GroupNotFound, exception.InvalidTarget) as exc:
                    LOG.info('Server group %s: %s', group.id, exc)
        return out

    def evacuate_lone_servers(self, host: str) -> list[str]:
        """One plain live migration per server of host in no group, Nova choosing the host.

        Each is started as a group member is (never twice, retried when Nova's
        answer is lost); its progress is Nova's to report. A server that
        cannot move now (busy, not ACTIVE or PAUSED) is logged and left.
        """
        compute = self.conn.compute
        grouped = set()
        for group in compute.server_groups(all_projects=True):
            grouped.update(group.member_ids or ())
        lone = {s.id: s for s in compute.servers(all_projects=True, compute_host=host)
                if s.id not in grouped}
        if not lone:
            return []
        cloud = NovaCloud(self.conn, {sid: sid for sid in lone},
                          microversion=compute.default_microversion,
                          retry=retries.RetryPolicy.from_conf(self.conf))
        started = []
        for sid, server in sorted(lone.items()):
            try:
                cloud.start(sid, None, None)
            except exception.CloudError as exc:
                LOG.error('Host %s under maintenance: server %s (%s) not moved: %s', host,
                          server.name, sid, exc)
                continue
            started.append(sid)
        return started

    def evacuation_target(self, host: str, zone: str | None = None) -> dict:
        if not zone:
            raise exception.InvalidTarget(
                f'host {host} is under maintenance but [maintenance] '
                'target_availability_zone is not set: SLM moves whole groups '
                'to another availability zone and needs to be told which.')
        return {'availability_zone': zone}

    def check(self, group: GroupInfo, target: dict, options: dict) -> None:
        self._check_auto_converge(options)
        with self._answering():
            self._discover(group, target, resuming=False)

    def _check_auto_converge(self, options: dict) -> None:
        """Nova's computes decide auto-converge at each migration's start: a request that
        asks for the other cannot be carried out."""
        asked = options.get('allow_auto_converge')
        computes = self.conf.nova.permit_auto_converge
        if asked is not None and bool(asked) != computes:
            raise exception.Invalid(
                'Invalid input for field options.allow_auto_converge: the compute hosts '
                f'{"do" if computes else "do not"} auto-converge live migrations (their '
                '[libvirt] live_migration_permit_auto_converge; [nova] permit_auto_converge '
                f'= {str(computes).lower()}), and Nova decides it when it starts each '
                'migration: SLM cannot change it for one job.')

    def scenario(self, group: GroupInfo, target: dict, options: dict, resuming: bool = False):
        if not resuming:
            self._check_auto_converge(options)
        with self._answering():
            found = self._discover(group, target, resuming)
        # what the computes do, whatever [planning] allow_auto_converge says
        scenario = with_options(found.scenario, {
            **options, 'allow_auto_converge': self.conf.nova.permit_auto_converge}, self.conf)
        notes = found.notes
        if self.conf.nova.use_agent and not resuming:
            scenario, measured = self._measured(scenario, found.server_ids,
                                                {n: s.host for n, s in found.servers.items()})
            notes = tuple(n for n in notes if note_code(n) != DIRTY_RATES_ASSUMED) + measured
        return dataclasses.replace(scenario, notes=notes)

    def _discover(self, group: GroupInfo, target: dict, resuming: bool):
        try:
            aim = Target(zone=target.get('availability_zone'),
                         aggregate=target.get('aggregate'),
                         hosts=tuple(target.get('hosts') or ()))
            return self.collector().discover(group.id, aim, resuming=resuming)
        except exception.MembersBusy as exc:
            raise exception.MembersBusy(_sentence(str(exc))) from None
        except exception.InvalidTarget as exc:
            raise exception.InvalidTarget(_sentence(str(exc))) from None

    def _measured(self, scenario, uuid_of: dict, host_of: dict):
        """The scenario with the dirty rates the agents measured, and what they could not."""
        collection = agent_collector.AgentCollector(self.conf).collect(
            {uuid_of[n]: host_of[n] for n in uuid_of})
        return (agent_collector.with_measurements(scenario, collection, uuid_of),
                collection.notes)

    def job_cloud(self, group: GroupInfo, scenario):
        actuator = None
        if self.conf.nova.use_agent:
            actuator, notes = agent_collector.actuator_for(
                self.conf, sorted({s.host for s in group.servers}))
            for note in notes:
                LOG.warning('Server group %s: %s', group.name, note)
        conn = self.conn
        return NovaCloud(conn, {s.name: s.server_id for s in group.servers},
                         microversion=conn.compute.default_microversion, actuator=actuator,
                         retry=retries.RetryPolicy.from_conf(self.conf),
                         converged_mib=self.conf.nova.converged_remaining_mib,
                         reset_after_abort=self.conf.nova.reset_state_after_abort)

    def verify(self, group: GroupInfo, target: dict, plan, progress: dict) -> list[str]:
        """Where Nova says each member runs after the job, and whether the group holds.

        A member whose migration completed must run on its planned host (and in
        the target zone), one that did not must still run where it was; every
        member must be ACTIVE or PAUSED and still in the group, and the group's
        policy must hold on the hosts it ended on.
        """
        compute = self.conn.compute
        problems: list[str] = []
        try:
            in_group = set(compute.get_server_group(group.id).member_ids or ())
        except sdk_exc.HttpException as exc:
            return [f'cannot read server group {group.name}: {compute_api.message(exc)}']
        planned = {m.member: m.destination for m in plan.members}
        zone = target.get('availability_zone')
        hosts = []
        for s in group.servers:
            p = progress.get(s.name)
            status = p.status if p else 'not_started'
            try:
                server = compute.get_server(s.server_id)
            except sdk_exc.HttpException as exc:
                problems.append(f'{s.name}: cannot read the server: {compute_api.message(exc)}')
                continue
            host = server.compute_host
            hosts.append(host)
            if status == api.COMPLETED:
                if planned.get(s.name) and host != planned[s.name]:
                    problems.append(f'{s.name} runs on {host}, not on the planned '
                                    f'{planned[s.name]}')
                if zone and server.availability_zone != zone:
                    problems.append(f'{s.name} is in zone {server.availability_zone}, '
                                    f'not {zone}')
            elif host is not None and host != s.host:
                problems.append(f'{s.name} moved to {host} although its migration is {status}')
            if server.status not in MIGRATABLE:
                problems.append(f'{s.name} is {server.status}')
            if s.server_id not in in_group:
                problems.append(f'{s.name} is no longer in the server group')
        if not policy_kept(group.policy, hosts):
            problems.append(f"the group's {group.policy} policy no longer holds on hosts "
                            f'{", ".join(sorted(h for h in hosts if h))}')
        return problems

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def _sentence(text: str) -> str:
    text = text[:1].upper() + text[1:]
    return text if text.endswith('.') else text + '.'


def policy_kept(policy: str, hosts: list[str | None]) -> bool:
    """Whether hosts (None where unknown) keep a server group's policy."""
    known = [h for h in hosts if h]
    if policy == 'anti-affinity':
        return len(set(known)) == len(known)
    if policy == 'affinity':
        return len(set(known)) <= 1
    return True
