"""Discovery through openstacksdk: a server group, where it runs, and where it may go.

From Nova: the server group (policy and rules, 2.64), its members (host,
availability zone, status and task state, flavor memory and disks, 2.47; the
pinned zone, 2.96), the compute services (host, zone, enabled, up) and, for
a target given as a host aggregate, the aggregate's hosts. From that it
builds the :class:`~slm_plugin.scenario.model.Scenario` the planners take:

* sites are availability zones; hosts are the enabled, up compute hosts plus
  the members' source hosts (a source may be disabled: that is what a
  maintenance does);
* NIC and link capacities come from the ``[nova]`` options, since Nova does
  not know them; so does the dirty rate, which only the SLM agent measures.
  The plan notes say so.

A request that cannot be carried out raises :class:`exception.InvalidTarget` with a
message for the operator, before anything starts: an unknown group, a target
zone or aggregate without enabled hosts, a member in ERROR or busy with
another task (already migrating), a member pinned to another zone.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from openstack import exceptions as sdk_exc

from slm_plugin import exception
from slm_plugin.model import VM
from slm_plugin.nova import compute_api
from slm_plugin.scenario.model import (
    BANDWIDTHS_CONFIGURED,
    DIRTY_RATES_ASSUMED,
    HOST_CAPACITY_UNCHECKED,
    Group,
    Host,
    Limits,
    Link,
    Member,
    Note,
    Request,
    Scenario,
)

MIGRATABLE = ('ACTIVE', 'PAUSED')  # server statuses Nova live-migrates


@dataclass(frozen=True, slots=True)
class Server:
    """A member of the group as Nova shows it."""

    id: str
    name: str  # the member's key in the scenario, the plan and Cloud.progress()
    server_name: str
    host: str
    zone: str | None
    status: str
    task_state: str | None
    memory_mib: float
    disk_mib: float  # root + ephemeral, 0 when it boots from volume
    pinned_zone: str | None = None


@dataclass(frozen=True, slots=True)
class Target:
    """Where the group goes: one of a zone, an aggregate, or hosts."""

    zone: str | None = None
    aggregate: str | None = None
    hosts: tuple[str, ...] = ()

    def __post_init__(self):
        given = [bool(self.zone), bool(self.aggregate), bool(self.hosts)]
        if sum(given) != 1:
            raise exception.InvalidTarget('name exactly one target: an availability zone, a host '
                                          'aggregate or a list of hosts')

    def describe(self) -> str:
        if self.zone:
            return f'availability zone {self.zone}'
        if self.aggregate:
            return f'host aggregate {self.aggregate}'
        return 'hosts ' + ', '.join(self.hosts)


@dataclass(frozen=True, slots=True)
class Discovery:
    scenario: Scenario
    group_id: str
    group_name: str
    policy: str
    rules: dict
    servers: dict[str, Server]  # member name -> server
    target: Target
    target_hosts: tuple[str, ...]
    microversion: str
    notes: tuple[str, ...] = field(default=())

    @property
    def server_ids(self) -> dict[str, str]:
        return {name: s.id for name, s in self.servers.items()}


@dataclass(frozen=True, slots=True)
class Capacities:
    """What Nova does not know; the [nova] options by default."""

    nic_mibps: float = 1192.0
    link_mibps: float = 1192.0
    links: dict = field(default_factory=dict)  # frozenset({zone_a, zone_b}) -> MiB/s
    dirty_rate_mibps: float = 0.0
    shared_storage: bool = False

    @classmethod
    def from_conf(cls, conf) -> Capacities:
        links = {}
        for pair, value in (conf.nova.links or {}).items():
            zones = [z.strip() for z in pair.split('+')]
            if len(zones) != 2 or not all(zones):
                raise ValueError(f'[nova] links: {pair!r} is not zoneA+zoneB')
            try:
                links[frozenset(zones)] = float(value)
            except ValueError:
                raise ValueError(f'[nova] links: {pair}: {value!r} is not MiB/s') from None
        return cls(conf.nova.host_nic_mibps, conf.nova.link_mibps, links,
                   conf.nova.assumed_dirty_rate_mibps, conf.nova.shared_storage)

    def link(self, a: str, b: str) -> float:
        return self.links.get(frozenset((a, b)), self.link_mibps)


class NovaCollector:
    """Reads a group and a target from Nova and builds the Scenario for the planners."""

    def __init__(self, conn, capacities: Capacities | None = None, limits: Limits | None = None,
                 microversion: str | None = None):
        self.conn = conn
        self.capacities = capacities or Capacities()
        self.limits = limits or Limits()
        self.microversion = microversion or compute_api.negotiate(conn)

    # -- Nova reads -----------------------------------------------------------------

    def find_group(self, ref: str):
        """A server group by id, or by name when the name is unique (any project)."""
        compute = self.conn.compute
        try:
            return compute.get_server_group(ref)
        except sdk_exc.NotFoundException:
            pass
        except sdk_exc.BadRequestException:
            pass  # not an id
        found = [g for g in compute.server_groups(all_projects=True) if g.name == ref]
        if not found:
            raise exception.GroupNotFound(f'no server group has the id or name {ref!r}')
        if len(found) > 1:
            raise exception.GroupNotFound(
                f'{len(found)} server groups are named {ref!r}; name the group '
                f'by id: {", ".join(sorted(g.id for g in found))}')
        return found[0]

    def compute_services(self) -> list:
        return list(self.conn.compute.services(binary='nova-compute'))

    def aggregate_hosts(self, ref: str) -> tuple[str, ...]:
        compute = self.conn.compute
        for agg in compute.aggregates():
            if ref in (agg.name, str(agg.id), getattr(agg, 'uuid', None)):
                return tuple(agg.hosts or ())
        raise exception.InvalidTarget(f'no host aggregate has the id or name {ref!r}')

    def server(self, server_id: str):
        try:
            return self.conn.compute.get_server(server_id)
        except sdk_exc.NotFoundException:
            raise exception.InvalidTarget(f'server {server_id}, a member of the group, does not '
                                          'exist (deleted?)') from None

    # -- discovery ------------------------------------------------------------------

    def discover(self, group_ref: str, target: Target, resuming: bool = False) -> Discovery:
        """The group and the target as a Scenario; exception.InvalidTarget if it cannot be done.

        ``resuming``: the job runs already (an engine takes it over), so its
        members may be migrating or have arrived: the request was checked when
        the job began and is not checked again.
        """
        group = self.find_group(group_ref)
        policy = group.policy or 'none'
        servers = self._servers(group, self._member_ids(group))
        services = self.compute_services()
        usable = {s.host: s for s in services if s.status == 'enabled' and s.state == 'up'}
        zone_of = {s.host: s.availability_zone for s in services}
        target_hosts = self._target_hosts(target, services, usable)
        if not resuming:
            self._check_members(servers, target, target_hosts)
            self._check_policy(group, policy, servers)

        sources = {s.host for s in servers}
        hosts = []
        for name in sorted(set(usable) | sources):
            zone = zone_of.get(name) or next((s.zone for s in servers if s.host == name), None)
            if zone is None:
                raise exception.InvalidTarget(f'host {name} has no compute service Nova reports')
            hosts.append(Host(name, zone, self.capacities.nic_mibps))
        sites = sorted({h.site for h in hosts})
        links = tuple(Link(a, b, self.capacities.link(a, b))
                      for i, a in enumerate(sites) for b in sites[i + 1:])
        names = _member_names(servers)
        scenario_members = tuple(
            Member(names[s.id], group.name, s.host, VM(
                memory_mib=s.memory_mib, dirty_rate_mibps=self.capacities.dirty_rate_mibps,
                disk_mib=0.0 if self.capacities.shared_storage else s.disk_mib))
            for s in servers)
        request = (Request(to_site=target.zone, groups=(group.name,)) if target.zone
                   else Request(to_hosts=target_hosts, groups=(group.name,)))
        if target.zone:
            # the planner takes every host of the site: keep only those that can take guests
            hosts = [h for h in hosts if h.site != target.zone or h.name in target_hosts
                     or h.name in sources]
        scenario = Scenario(
            name=f'nova:{group.name}', hosts=tuple(hosts), links=links,
            groups=(Group(group.name, scenario_members, policy=_policy(policy)),),
            request=request, limits=self.limits,
            description=f'server group {group.name} ({group.id}) to {target.describe()}')
        by_name = {names[s.id]: _renamed(s, names[s.id]) for s in servers}
        return Discovery(scenario, group.id, group.name, policy, dict(group.rules or {}),
                         by_name, target, target_hosts, self.microversion,
                         tuple(self._notes(policy, group.rules or {})))

    def group_servers(self, group) -> list[Server]:
        """The members of a group (as ``find_group`` returns it), named as discovery names them."""
        servers = self._servers(group, self._member_ids(group))
        names = _member_names(servers)
        return [_renamed(s, names[s.id]) for s in servers]

    @staticmethod
    def _member_ids(group) -> list[str]:
        members = list(group.member_ids or ())
        if not members:
            raise exception.InvalidTarget(f'server group {group.name} ({group.id}) has no members')
        return members

    def _servers(self, group, member_ids) -> list[Server]:
        out = []
        for sid in member_ids:
            s = self.server(sid)
            flavor = s.flavor
            ram = _flavor_value(flavor, 'ram')
            if ram is None:
                raise exception.InvalidTarget(f'server {s.name} ({s.id}): Nova did not return its '
                                              'flavor (microversion 2.47 or later is needed)')
            boots_from_volume = not _image_id(s.image)
            root = 0 if boots_from_volume else (_flavor_value(flavor, 'disk') or 0)
            ephemeral = _flavor_value(flavor, 'ephemeral') or 0
            out.append(Server(
                id=s.id, name=s.name, server_name=s.name, host=s.compute_host,
                zone=s.availability_zone, status=s.status, task_state=s.task_state,
                memory_mib=float(ram), disk_mib=float((root + ephemeral) * 1024),
                pinned_zone=getattr(s, 'pinned_availability_zone', None)))
        return out

    def _target_hosts(self, target: Target, services, usable) -> tuple[str, ...]:
        if target.zone:
            in_zone = [s for s in services if s.availability_zone == target.zone]
            if not in_zone:
                zones = sorted({s.availability_zone for s in services if s.availability_zone})
                raise exception.InvalidTarget(
                    f'no compute host is in availability zone {target.zone!r}; '
                    f'zones: {", ".join(zones)}')
            hosts = tuple(sorted(s.host for s in in_zone if s.host in usable))
            if not hosts:
                why = ', '.join(f'{s.host} ({_unusable(s)})' for s in in_zone)
                raise exception.InvalidTarget(
                    f'availability zone {target.zone} has no enabled compute '
                    f'host that is up: {why}')
            return hosts
        if target.aggregate:
            members = self.aggregate_hosts(target.aggregate)
            hosts = tuple(sorted(h for h in members if h in usable))
            if not hosts:
                raise exception.InvalidTarget(
                    f'host aggregate {target.aggregate} has no enabled compute '
                    f'host that is up (it holds: {", ".join(members) or "none"})')
            return hosts
        known = {s.host: s for s in services}
        for h in target.hosts:
            if h not in known:
                raise exception.InvalidTarget(f'target host {h!r} has no compute service')
            if h not in usable:
                raise exception.InvalidTarget(f'target host {h} is {_unusable(known[h])}')
        return tuple(target.hosts)

    @staticmethod
    def _check_policy(group, policy: str, servers) -> None:
        """Refuse what Nova's scheduler will refuse member by member, before anything starts.

        Live migration moves one server at a time and the scheduler checks each move
        against the group (ServerGroupAffinityFilter): the first member of an
        affinity group sent to another host finds its group on the old one and gets
        NoValidHost, and so does every other (seen on Nova 34 with the libvirt driver).
        """
        if policy == 'affinity' and len(servers) > 1:
            raise exception.InvalidTarget(
                f"server group {group.name} ({group.id}) has the affinity policy: Nova's "
                f'scheduler keeps its {len(servers)} members on one host and refuses to live-'
                'migrate them one at a time to another (ServerGroupAffinityFilter, '
                'NoValidHost), so nothing is started')

    def _check_members(self, servers, target: Target, target_hosts) -> None:
        problems = []
        for s in servers:
            label = f'{s.server_name} ({s.id})'
            if s.task_state:
                what = 'already migrating' if s.task_state == 'migrating' else 'busy'
                problems.append(f'{label} is {what} (task_state {s.task_state})')
            elif s.status not in MIGRATABLE:
                problems.append(f'{label} is {s.status}; Nova live-migrates only ACTIVE or '
                                'PAUSED servers')
            if target.zone and s.zone == target.zone:
                problems.append(f'{label} is already in availability zone {target.zone}')
            elif s.host in target_hosts:
                problems.append(f'{label} is already on target host {s.host}')
            if target.zone and s.pinned_zone and s.pinned_zone != target.zone:
                problems.append(f'{label} was booted into availability zone {s.pinned_zone}; '
                                "Nova's scheduler will not move it to another zone")
        if problems:
            busy = any(s.task_state for s in servers)
            raise (exception.MembersBusy if busy else exception.InvalidTarget)(
                'cannot migrate the group: ' + '; '.join(problems))

    def _notes(self, policy: str, rules: dict) -> list[str]:
        cap = self.capacities
        notes = [
            Note(DIRTY_RATES_ASSUMED,
                 f'dirty rates are not known without the SLM agent: every guest is assumed to '
                 f'dirty {cap.dirty_rate_mibps:g} MiB/s ([nova] assumed_dirty_rate_mibps); '
                 'plans that depend on it are corrected from observed progress'),
            Note(BANDWIDTHS_CONFIGURED,
                 'host NIC and link bandwidths come from [nova] host_nic_mibps, link_mibps and '
                 'links, not from measurements'),
            Note(HOST_CAPACITY_UNCHECKED,
                 "host capacity is checked by Nova's scheduler when each migration starts "
                 f'(microversion {self.microversion}), not by the plan'),
        ]
        if rules.get('max_server_per_host') and policy == 'anti-affinity':
            notes.append(f'the group allows {rules["max_server_per_host"]} members per host; '
                         'the plan still gives every member its own host')
        return notes


def _member_names(servers: list[Server]) -> dict[str, str]:
    """Server id -> member name: the server's name, made unique where names repeat."""
    count = Counter(s.server_name for s in servers)
    return {s.id: s.server_name if count[s.server_name] == 1 and s.server_name
            else f'{s.server_name or "server"}-{s.id[:8]}' for s in servers}


def _renamed(s: Server, name: str) -> Server:
    return Server(s.id, name, s.server_name, s.host, s.zone, s.status, s.task_state,
                  s.memory_mib, s.disk_mib, s.pinned_zone)


def _flavor_value(flavor, key: str):
    if flavor is None:
        return None
    value = flavor.get(key) if isinstance(flavor, dict) else getattr(flavor, key, None)
    if value is None and key == 'ephemeral':
        value = getattr(flavor, 'ephemeral', None)
    return value


def _image_id(image) -> str | None:
    """The image a server booted from; none when it boots from a volume."""
    if not image:
        return None
    if isinstance(image, str):
        return image
    try:
        return image['id']
    except (KeyError, TypeError):
        return getattr(image, 'id', None)


def _policy(policy: str) -> str:
    return policy if policy in ('anti-affinity', 'affinity', 'soft-anti-affinity',
                                'soft-affinity') else 'none'


def _unusable(service) -> str:
    if service.status != 'enabled':
        reason = f': {service.disabled_reason}' if service.disabled_reason else ''
        return f'disabled{reason}'
    return f'compute service {service.state}'
