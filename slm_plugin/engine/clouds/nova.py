"""``[engine] cloud = nova``: the engine's jobs run on a real cloud, through the Compute API.

Groups, members and targets come from Nova (``slm_plugin.collectors.nova``);
each job drives a :class:`~slm_plugin.execution.nova.NovaCloud` of its own,
over one openstacksdk connection shared by the driver (``[nova]``
credentials). With ``[nova] use_agent`` the SLM agents of the source hosts
measure dirty rates before the plan and carry out caps and holds.

Taking a job over works because Nova outlives the engine: the new owner
discovers the group again without re-checking the request (its members are
migrating or have arrived), and its NovaCloud ``adopt``\\ s the migrations the
job's events say were asked for, including those that ended meanwhile.
"""

from __future__ import annotations

import dataclasses
import threading

from oslo_log import log as logging

from slm_plugin.collectors import agent as agent_collector
from slm_plugin.collectors.nova import (
    Capacities,
    DiscoveryError,
    MembersBusy,
    NovaCollector,
    Target,
)
from slm_plugin.common import compute_api
from slm_plugin.engine import clouds
from slm_plugin.engine.clouds import (
    CloudDriver,
    GroupInfo,
    GroupNotFound,
    InvalidTarget,
    ServerInfo,
    with_options,
)
from slm_plugin.execution import cloud as api
from slm_plugin.execution import retry as retries
from slm_plugin.execution.nova import NovaCloud
from slm_plugin.execution.nova_job import limits_from_conf

LOG = logging.getLogger(__name__)


class NovaCloudDriver(CloudDriver):
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

    def find_group(self, ref: str) -> GroupInfo:
        collector = self.collector()
        try:
            group = collector.find_group(ref)
        except DiscoveryError as exc:
            raise GroupNotFound(_sentence(str(exc))) from None
        try:
            servers = collector.group_servers(group)
        except DiscoveryError as exc:  # the group exists; its members cannot be moved
            raise InvalidTarget(_sentence(str(exc))) from None
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
                except (GroupNotFound, InvalidTarget) as exc:  # deleted or emptied meanwhile
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
            except api.CloudError as exc:
                LOG.error('Host %s under maintenance: server %s (%s) not moved: %s', host,
                          server.name, sid, exc)
                continue
            started.append(sid)
        return started

    def evacuation_target(self, host: str, zone: str | None = None) -> dict:
        if not zone:
            raise InvalidTarget(f'host {host} is under maintenance but [maintenance] '
                                'target_availability_zone is not set: SLM moves whole groups '
                                'to another availability zone and needs to be told which.')
        return {'availability_zone': zone}

    def check(self, group: GroupInfo, target: dict, options: dict) -> None:
        self._discover(group, target, resuming=False)

    def scenario(self, group: GroupInfo, target: dict, options: dict, resuming: bool = False):
        found = self._discover(group, target, resuming)
        scenario = with_options(found.scenario, options)
        notes = found.notes
        if self.conf.nova.use_agent and not resuming:
            scenario, measured = self._measured(scenario, found.server_ids,
                                                {n: s.host for n, s in found.servers.items()})
            notes = tuple(n for n in notes if not n.startswith('dirty rates are not known')) \
                + measured
        return dataclasses.replace(scenario, notes=notes)

    def _discover(self, group: GroupInfo, target: dict, resuming: bool):
        try:
            aim = Target(zone=target.get('availability_zone'),
                         aggregate=target.get('aggregate'),
                         hosts=tuple(target.get('hosts') or ()))
            return self.collector().discover(group.id, aim, resuming=resuming)
        except MembersBusy as exc:
            raise clouds.MembersBusy(_sentence(str(exc))) from None
        except DiscoveryError as exc:
            raise InvalidTarget(_sentence(str(exc))) from None

    def _measured(self, scenario, uuid_of: dict, host_of: dict):
        """The scenario with the dirty rates the agents measured, and what they could not."""
        collection = agent_collector.AgentCollector(self.conf).collect(
            {uuid_of[n]: host_of[n] for n in uuid_of})
        return (agent_collector.with_measurements(scenario, collection, uuid_of),
                collection.notes)

    def cloud_for(self, group: GroupInfo, scenario):
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
                         converged_mib=self.conf.nova.converged_remaining_mib)

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def _sentence(text: str) -> str:
    text = text[:1].upper() + text[1:]
    return text if text.endswith('.') else text + '.'
