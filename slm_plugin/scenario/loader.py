"""Scenarios from YAML: load, validate, and the scenarios shipped with slm_plugin.

A scenario file describes a cloud (sites with their hosts, the WAN links
between sites), the server groups living in it, where they should go and the
limits a migration must respect::

    name: hadoop-prod                    # required
    description: One line for humans.    # optional
    sites:                               # site name -> its hosts, at least one host each
      dc-east:
        hosts:
          - {name: east-1, nic_mibps: 1192, memory_mib: 262144}
      dc-west:
        hosts:
          - {name: west-1, nic_mibps: 1192, memory_mib: 262144}
    links:                               # optional; one per pair of sites
      - {between: [dc-east, dc-west], capacity_mibps: 238, latency_ms: 30}
    groups:                              # at least one
      - name: hadoop
        policy: anti-affinity            # anti-affinity | affinity | soft-anti-affinity
                                         # | soft-affinity | none (the default)
        members:                         # at least one
          - {name: master, host: east-1, memory_mib: 16384, dirty_rate_mibps: 60,
             wws_mib: 2048}
          - {name: worker-1, host: east-2, memory_mib: 8192, dirty_rate_mibps: 30,
             wws_mib: 1024, disk_gib: 40, disk_write_mibps: 5, wire_ratio: 1.0}
        traffic:                         # optional: MiB/s between two members of the group
          - {between: [master, worker-1], mibps: 20}
    request: {to_site: dc-west}          # or {to_hosts: [west-1, west-2]};
                                         # optional groups: [names] (default: every group)
    limits: {max_concurrent_per_host: 2, max_concurrent_per_link: null, max_downtime_ms: 300,
             max_rounds: 30, on_stall: postcopy, auto_converge: false}   # all optional

Fields and units (a number is a bare YAML number: ``40``, never ``40MB/s``):

* host: ``name``, ``nic_mibps`` (required, > 0: migration traffic its NIC
  carries each way), ``memory_mib`` (optional, > 0 or null: room for guests);
* link: ``between`` (two distinct known sites), ``capacity_mibps`` (> 0),
  ``latency_ms`` (>= 0, default 0);
* member: ``name``, ``host`` (its source host), ``memory_mib`` (required,
  > 0), ``dirty_rate_mibps`` (>= 0, default 0), ``wws_mib`` (writable working
  set, > 0 and at most memory_mib; default: all of memory), ``disk_gib``
  (local disk copied by block migration, >= 0; default 0 = shared storage),
  ``disk_write_mibps`` (>= 0, default 0), ``wire_ratio`` (wire bytes per
  guest byte, in (0, 1], default 1);
* traffic: ``between`` (two distinct members of the group), ``mibps`` (> 0);
* request: exactly one of ``to_site`` (a site; the planner picks the hosts)
  and ``to_hosts`` (explicit target hosts), optional ``groups``;
* limits: ``max_concurrent_per_host`` (integer >= 1, default 2),
  ``max_concurrent_per_link`` (integer >= 1 or null = unlimited, default
  null), ``max_downtime_ms`` (>= 0, default 300), ``max_rounds`` (integer
  >= 1, default 30), ``on_stall`` (pause | postcopy | none, default pause),
  ``auto_converge`` (true | false, default false).

Validation stops at the first problem and raises :class:`slm_plugin.exception.ScenarioError` with a
one-line message naming the file, the field path and the problem, e.g.
``hadoop.yaml: groups[0].members[2].memory_mib: must be greater than 0, got -5``.
Besides types, ranges and unknown fields (with a suggestion for typos) it checks
names: host, member and group names are unique in the scenario; hosts, sites,
groups and members referred to exist; a hard (anti-)affinity group's members
sit on distinct hosts (one host); every member to migrate has a link from its
site to the target and is not in the target site (on a target host) already.
Capacity of the target hosts is left to the planner.

YAML details: duplicate keys are an error (PyYAML would keep the last one),
``1e3`` is read as a number (PyYAML's YAML 1.1 rules would read a string),
anchors and merge keys (``<<: *defaults``) work as usual.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from pathlib import Path
from typing import Any, NoReturn

import yaml

from slm_plugin import exception
from slm_plugin.model import VM, CompletionPolicy
from slm_plugin.model.precopy import STALL_POLICIES
from slm_plugin.scenario.model import (
    GROUP_POLICIES,
    Group,
    Host,
    Limits,
    Link,
    Member,
    Request,
    Scenario,
)

__all__ = ['DATA_DIR', 'from_dict', 'load', 'load_shipped', 'loads', 'shipped']

DATA_DIR = Path(__file__).resolve().parent / 'data'

_SCENARIO_FIELDS = {
    'name': True, 'description': False, 'sites': True, 'links': False, 'groups': True,
    'request': True, 'limits': False,
}
_SITE_FIELDS = {'hosts': True}
_HOST_FIELDS = {'name': True, 'nic_mibps': True, 'memory_mib': False}
_LINK_FIELDS = {'between': True, 'capacity_mibps': True, 'latency_ms': False}
_GROUP_FIELDS = {'name': True, 'policy': False, 'members': True, 'traffic': False}
_MEMBER_FIELDS = {
    'name': True, 'host': True, 'memory_mib': True, 'dirty_rate_mibps': False, 'wws_mib': False,
    'disk_gib': False, 'disk_write_mibps': False, 'wire_ratio': False,
}
_TRAFFIC_FIELDS = {'between': True, 'mibps': True}
_REQUEST_FIELDS = {'to_site': False, 'to_hosts': False, 'groups': False}
_LIMITS_FIELDS = {
    'max_concurrent_per_host': False, 'max_concurrent_per_link': False,
    'max_downtime_ms': False, 'max_rounds': False, 'on_stall': False, 'auto_converge': False,
}
_HARD_POLICIES = ('anti-affinity', 'affinity')


# -- entry points -----------------------------------------------------------------------------


def load(path: str | Path) -> Scenario:
    """The scenario in a YAML file."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding='utf-8')
    except (OSError, UnicodeDecodeError) as e:
        raise exception.ScenarioError(
            source, '', f'cannot read the file: {_one_line(str(e))}') from e
    return loads(text, source)


def loads(text: str, source: str = '<string>') -> Scenario:
    """The scenario in a YAML document; ``source`` names it in error messages."""
    try:
        data = yaml.load(text, Loader=_Loader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as e:
        raise exception.ScenarioError(source, _mark(e), f'invalid YAML: {_yaml_problem(e)}') from e
    except yaml.YAMLError as e:
        raise exception.ScenarioError(source, '', f'invalid YAML: {_one_line(str(e))}') from e
    return from_dict(data, source)


def from_dict(data: Any, source: str = '<dict>') -> Scenario:
    """The scenario described by plain data (what ``yaml.safe_load`` returns)."""
    return _Builder(source).scenario(data)


def shipped() -> dict[str, Path]:
    """The scenarios shipped with slm_plugin: file stem -> path, sorted by name."""
    files = [p for p in DATA_DIR.iterdir() if p.suffix in ('.yaml', '.yml') and p.is_file()]
    return {p.stem: p for p in sorted(files, key=lambda p: p.stem)}


def load_shipped(name: str) -> Scenario:
    """A shipped scenario by name (``hadoop``, ``three-tier-web``, ...)."""
    available = shipped()
    if name not in available:
        raise exception.ScenarioError(
            '<shipped>', '', f"no shipped scenario {name!r}{_suggest(name, available)}"
            f" (shipped: {', '.join(available) or 'none'})",
        )
    path = available[name]
    try:
        return loads(path.read_text(encoding='utf-8'), path.name)
    except OSError as e:  # pragma: no cover - the package is broken
        raise exception.ScenarioError(
            path.name, '', f'cannot read the file: {_one_line(str(e))}') from e


# -- YAML -------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys and reads 1e3 as a float."""


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == 'tag:yaml.org,2002:merge':
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.get(key)
        except TypeError:  # unhashable; construct_mapping reports it
            continue
        if first is not None:
            raise yaml.constructor.ConstructorError(
                'while constructing a mapping', node.start_mark,
                f'found duplicate key {key!r} (first given on line {first + 1})',
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=True)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_implicit_resolver(
    'tag:yaml.org,2002:float',
    re.compile(r'^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$'),
    list('-+0123456789'),
)


def _mark(e: yaml.MarkedYAMLError) -> str:
    mark = e.problem_mark or e.context_mark
    if mark is None:
        return ''
    return f'line {mark.line + 1}, column {mark.column + 1}'


def _yaml_problem(e: yaml.MarkedYAMLError) -> str:
    parts = [p for p in (e.context, e.problem) if p]
    return _one_line(': '.join(parts) or str(e))


def _one_line(text: str) -> str:
    return ' '.join(text.split())


# -- validation -------------------------------------------------------------------------------


class _Builder:
    """Walks the data once, turning it into dataclasses; raises at the first problem."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, path: str, problem: str) -> NoReturn:
        raise exception.ScenarioError(self.source, path, problem)

    # generic shapes

    def mapping(self, value: Any, path: str, fields: dict[str, bool], what: str) -> dict:
        if not isinstance(value, dict):
            self.fail(path, f'expected a mapping ({what}), got {_show(value)}')
        for key in value:
            if not isinstance(key, str) or key not in fields:
                hint = _suggest(key, fields)
                self.fail(
                    _join(path, str(key)),
                    f'unknown field{hint}' if hint
                    else f"unknown field (fields of {what}: {', '.join(fields)})",
                )
        for key, required in fields.items():
            if required and key not in value:
                self.fail(_join(path, key), f'required field missing ({what})')
        return value

    def sequence(self, value: Any, path: str, what: str, min_len: int = 0) -> list:
        if not isinstance(value, list):
            self.fail(path, f'expected a list of {what}, got {_show(value)}')
        if len(value) < min_len:
            self.fail(path, f'expected at least {min_len} {what}, got {len(value)}')
        return value

    def name(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(path, f'expected a name (a non-empty string), got {_show(value)}')
        if value != value.strip():
            self.fail(path, f'name {value!r} has leading or trailing blanks')
        return value

    def number(
        self, value: Any, path: str, unit: str, *, low: float = 0.0, strict: bool = False,
        high: float | None = None,
    ) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            hint = f' of {unit}' if unit else ''
            self.fail(path, f'expected a number{hint}, got {_show(value)}')
        try:
            finite = math.isfinite(value)
        except OverflowError:  # an int beyond any float
            finite = False
        if not finite:
            self.fail(path, f'must be a finite number, got {_show(value)}')
        if strict and not value > low:
            self.fail(path, f'must be greater than {_num(low)}, got {_show(value)}')
        if not strict and not value >= low:
            if low == 0:
                self.fail(path, f'must not be negative, got {_show(value)}')
            self.fail(path, f'must be at least {_num(low)}, got {_show(value)}')
        if high is not None and value > high:
            self.fail(path, f'must be at most {_num(high)}, got {_show(value)}')
        return float(value)

    def integer(self, value: Any, path: str, what: str, low: int) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(path, f'expected a whole number of {what}, got {_show(value)}')
        if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
            self.fail(path, f'expected a whole number of {what}, got {_show(value)}')
        if value < low:
            self.fail(path, f'must be at least {low}, got {_show(value)}')
        return int(value)

    def choice(self, value: Any, path: str, choices: tuple[str, ...]) -> str:
        if not isinstance(value, str) or value not in choices:
            hint = _suggest(value, choices) if isinstance(value, str) else ''
            self.fail(path, f"expected one of {', '.join(choices)}, got {_show(value)}{hint}")
        return value

    def pair(self, value: Any, path: str, what: str) -> tuple[Any, Any]:
        if not isinstance(value, list) or len(value) != 2:
            self.fail(path, f'expected a list of two {what}, got {_show(value)}')
        a = self.name(value[0], f'{path}[0]')
        b = self.name(value[1], f'{path}[1]')
        if a == b:
            self.fail(path, f'expected two different {what}, got {a!r} twice')
        return a, b

    # the scenario

    def scenario(self, data: Any) -> Scenario:
        if data is None:
            self.fail('', 'the scenario is empty')
        data = self.mapping(data, '', _SCENARIO_FIELDS, 'a scenario')
        name = self.name(data['name'], 'name')
        description = data.get('description', '')
        if description is None:
            description = ''
        if not isinstance(description, str):
            self.fail('description', f'expected a string, got {_show(description)}')
        hosts = self.sites(data['sites'])
        sites = tuple(dict.fromkeys(h.site for h in hosts))
        links = self.links(data.get('links', []), sites)
        host_by_name = {h.name: h for h in hosts}
        groups, member_paths = self.groups(data['groups'], host_by_name)
        request = self.request(data['request'], sites, hosts, groups)
        self.check_request(request, groups, member_paths, host_by_name, links)
        limits = self.limits(data.get('limits', {}))
        return Scenario(
            name=name, hosts=hosts, links=links, groups=groups, request=request,
            limits=limits, description=description.strip(),
        )

    def sites(self, value: Any) -> tuple[Host, ...]:
        if not isinstance(value, dict):
            self.fail('sites', f'expected a mapping of site name to its hosts, got {_show(value)}')
        if not value:
            self.fail('sites', 'a scenario needs at least one site')
        hosts: list[Host] = []
        where: dict[str, str] = {}
        for site, body in value.items():
            site_path = f'sites.{site}'
            self.name(site, site_path)
            body = self.mapping(body, site_path, _SITE_FIELDS, 'a site')
            host_list = self.sequence(body['hosts'], f'{site_path}.hosts', 'hosts')
            if not host_list:
                self.fail(f'{site_path}.hosts', 'a site needs at least one host')
            for i, raw in enumerate(host_list):
                path = f'{site_path}.hosts[{i}]'
                raw = self.mapping(raw, path, _HOST_FIELDS, 'a host')
                name = self.name(raw['name'], f'{path}.name')
                if name in where:
                    self.fail(f'{path}.name', f'duplicate host {name!r} (also {where[name]})')
                where[name] = path
                nic = self.number(raw['nic_mibps'], f'{path}.nic_mibps', 'MiB/s', strict=True)
                memory = raw.get('memory_mib')
                if memory is not None:
                    memory = self.number(memory, f'{path}.memory_mib', 'MiB', strict=True)
                hosts.append(Host(name=name, site=site, nic_mibps=nic, memory_mib=memory))
        return tuple(hosts)

    def links(self, value: Any, sites: tuple[str, ...]) -> tuple[Link, ...]:
        if value is None:
            return ()
        items = self.sequence(value, 'links', 'links')
        links: list[Link] = []
        where: dict[frozenset[str], str] = {}
        for i, raw in enumerate(items):
            path = f'links[{i}]'
            raw = self.mapping(raw, path, _LINK_FIELDS, 'a link')
            a, b = self.ends(
                raw, path, 'sites', sites, where, 'a link',
                lambda site: f'site {site!r} does not exist (sites: {_listing(sites)})',
            )
            capacity = self.number(
                raw['capacity_mibps'], f'{path}.capacity_mibps', 'MiB/s', strict=True,
            )
            latency = self.number(raw.get('latency_ms', 0), f'{path}.latency_ms', 'ms')
            links.append(Link(a=a, b=b, capacity_mibps=capacity, latency_ms=latency))
        return tuple(links)

    def groups(
        self, value: Any, hosts: dict[str, Host],
    ) -> tuple[tuple[Group, ...], dict[str, str]]:
        items = self.sequence(value, 'groups', 'groups')
        if not items:
            self.fail('groups', 'a scenario needs at least one group')
        groups: list[Group] = []
        group_where: dict[str, str] = {}
        member_where: dict[str, str] = {}
        for i, raw in enumerate(items):
            path = f'groups[{i}]'
            raw = self.mapping(raw, path, _GROUP_FIELDS, 'a group')
            name = self.name(raw['name'], f'{path}.name')
            if name in group_where:
                self.fail(f'{path}.name', f'duplicate group {name!r} (also {group_where[name]})')
            group_where[name] = path
            policy = self.choice(raw.get('policy', 'none'), f'{path}.policy', GROUP_POLICIES)
            member_list = self.sequence(raw['members'], f'{path}.members', 'members')
            if not member_list:
                self.fail(f'{path}.members', 'a group needs at least one member')
            members = []
            for j, raw_member in enumerate(member_list):
                member = self.member(raw_member, f'{path}.members[{j}]', name, hosts)
                if member.name in member_where:
                    self.fail(
                        f'{path}.members[{j}].name',
                        f'duplicate member {member.name!r} (also {member_where[member.name]})',
                    )
                member_where[member.name] = f'{path}.members[{j}]'
                self.check_placement(policy, name, members, member, f'{path}.members[{j}].host')
                members.append(member)
            traffic = self.traffic(raw.get('traffic', []), f'{path}.traffic', name, members)
            groups.append(Group(name=name, members=tuple(members), policy=policy, traffic=traffic))
        return tuple(groups), member_where

    def member(self, raw: Any, path: str, group: str, hosts: dict[str, Host]) -> Member:
        raw = self.mapping(raw, path, _MEMBER_FIELDS, 'a member')
        name = self.name(raw['name'], f'{path}.name')
        host = self.name(raw['host'], f'{path}.host')
        if host not in hosts:
            self.fail(f'{path}.host', f'unknown host {host!r} (known: {_listing(hosts)})')
        memory = self.number(raw['memory_mib'], f'{path}.memory_mib', 'MiB', strict=True)
        dirty = self.number(
            raw.get('dirty_rate_mibps', 0), f'{path}.dirty_rate_mibps', 'MiB/s',
        )
        wws = raw.get('wws_mib')
        if wws is not None:
            wws = self.number(wws, f'{path}.wws_mib', 'MiB', strict=True)
            if wws > memory:
                self.fail(
                    f'{path}.wws_mib',
                    f"the writable working set cannot exceed memory_mib ({_num(memory)}),"
                    f" got {_show(raw['wws_mib'])}",
                )
        disk_gib = self.number(raw.get('disk_gib', 0), f'{path}.disk_gib', 'GiB')
        disk_write = self.number(
            raw.get('disk_write_mibps', 0), f'{path}.disk_write_mibps', 'MiB/s',
        )
        ratio = self.number(
            raw.get('wire_ratio', 1.0), f'{path}.wire_ratio', 'wire bytes per guest byte',
            strict=True, high=1.0,
        )
        try:
            vm = VM(
                memory_mib=memory, dirty_rate_mibps=dirty, wws_mib=wws, disk_mib=disk_gib * 1024,
                disk_write_mibps=disk_write, wire_ratio=ratio,
            )
        except ValueError as e:  # pragma: no cover - the checks above are stricter
            self.fail(path, str(e))
        return Member(name=name, group=group, host=host, vm=vm)

    def check_placement(
        self, policy: str, group: str, before: list[Member], member: Member, path: str,
    ):
        if policy == 'anti-affinity':
            for other in before:
                if other.host == member.host:
                    self.fail(
                        path,
                        f'anti-affinity group {group!r} already has member {other.name!r}'
                        f' on {member.host}',
                    )
        elif policy == 'affinity' and before and before[0].host != member.host:
            self.fail(
                path,
                f'affinity group {group!r} has its members on {before[0].host},'
                f' not {member.host}',
            )

    def traffic(
        self, value: Any, path: str, group: str, members: list[Member],
    ) -> tuple[tuple[str, str, float], ...]:
        if value is None:
            return ()
        items = self.sequence(value, path, 'traffic entries')
        names = [m.name for m in members]
        flows: list[tuple[str, str, float]] = []
        where: dict[frozenset[str], str] = {}
        for i, raw in enumerate(items):
            item = f'{path}[{i}]'
            raw = self.mapping(raw, item, _TRAFFIC_FIELDS, 'a traffic entry')
            a, b = self.ends(
                raw, item, 'members', names, where, 'traffic',
                lambda member: f'{member!r} is not a member of group {group!r}'
                f' (members: {_listing(names)})',
            )
            rate = self.number(raw['mibps'], f'{item}.mibps', 'MiB/s', strict=True)
            flows.append((a, b, rate))
        return tuple(flows)

    def ends(self, raw, path: str, kind: str, known, seen: dict, what: str, unknown):
        """The two ends of a link or a traffic entry: both known, the pair given once."""
        a, b = self.pair(raw['between'], f'{path}.between', kind)
        for j, end in enumerate((a, b)):
            if end not in known:
                self.fail(f'{path}.between[{j}]', unknown(end))
        key = frozenset((a, b))
        if key in seen:
            self.fail(f'{path}.between',
                      f'{what} between {a} and {b} is already given at {seen[key]}')
        seen[key] = path
        return a, b

    def request(
        self, value: Any, sites: tuple[str, ...], hosts: tuple[Host, ...],
        groups: tuple[Group, ...],
    ) -> Request:
        raw = self.mapping(value, 'request', _REQUEST_FIELDS, 'the request')
        has_site = raw.get('to_site') is not None
        has_hosts = raw.get('to_hosts') is not None
        if has_site == has_hosts:
            self.fail(
                'request',
                'give to_site or to_hosts, not both' if has_site
                else 'give to_site (a site) or to_hosts (a list of hosts)',
            )
        to_site = None
        to_hosts: tuple[str, ...] = ()
        if has_site:
            to_site = self.name(raw['to_site'], 'request.to_site')
            if to_site not in sites:
                self.fail(
                    'request.to_site',
                    f'site {to_site!r} does not exist (sites: {_listing(sites)})',
                )
        else:
            items = self.sequence(raw['to_hosts'], 'request.to_hosts', 'hosts')
            if not items:
                self.fail('request.to_hosts', 'name at least one target host')
            known = [h.name for h in hosts]
            seen: list[str] = []
            for i, item in enumerate(items):
                name = self.name(item, f'request.to_hosts[{i}]')
                if name not in known:
                    self.fail(
                        f'request.to_hosts[{i}]',
                        f'unknown host {name!r} (known: {_listing(known)})',
                    )
                if name in seen:
                    self.fail(f'request.to_hosts[{i}]', f'host {name!r} is listed twice')
                seen.append(name)
            to_hosts = tuple(seen)
        chosen: list[str] = []
        if raw.get('groups') is not None:
            items = self.sequence(raw['groups'], 'request.groups', 'group names')
            if not items:
                self.fail('request.groups', 'name at least one group (or leave groups out)')
            known = [g.name for g in groups]
            for i, item in enumerate(items):
                name = self.name(item, f'request.groups[{i}]')
                if name not in known:
                    self.fail(
                        f'request.groups[{i}]',
                        f'unknown group {name!r}{_suggest(name, known)}'
                        f' (groups: {_listing(known)})',
                    )
                if name in chosen:
                    self.fail(f'request.groups[{i}]', f'group {name!r} is listed twice')
                chosen.append(name)
        return Request(to_site=to_site, to_hosts=to_hosts, groups=tuple(chosen))

    def check_request(
        self, request: Request, groups: tuple[Group, ...], member_paths: dict[str, str],
        hosts: dict[str, Host], links: tuple[Link, ...],
    ):
        wanted = [g for g in groups if not request.groups or g.name in request.groups]
        members = [m for g in wanted for m in g.members]
        linked = {frozenset((link.a, link.b)) for link in links}
        if request.to_site is not None:
            target = request.to_site
            if all(hosts[m.host].site == target for m in members):
                self.fail(
                    'request.to_site', f'target site {target} is where every member already is',
                )
            for m in members:
                site = hosts[m.host].site
                path = member_paths[m.name]
                if site == target:
                    self.fail(
                        f'{path}.host',
                        f'{m.host} is in {target} already, the target site (request.to_site)',
                    )
                if frozenset((site, target)) not in linked:
                    self.fail(
                        'request.to_site',
                        f'no link between {site} and {target} (needed by {path}, {m.name!r});'
                        ' add one under links',
                    )
            return
        targets = set(request.to_hosts)
        target_sites = {hosts[h].site for h in request.to_hosts}
        for m in members:
            path = member_paths[m.name]
            if m.host in targets:
                self.fail(
                    f'{path}.host',
                    f'{m.host} is one of the target hosts already (request.to_hosts)',
                )
            site = hosts[m.host].site
            if site not in target_sites and not any(
                frozenset((site, t)) in linked for t in target_sites
            ):
                self.fail(
                    'request.to_hosts',
                    f'no link from {site} to {_listing(sorted(target_sites))}, where the target'
                    f' hosts are (needed by {path}, {m.name!r}); add one under links',
                )

    def limits(self, value: Any) -> Limits:
        if value is None:
            return Limits()
        raw = self.mapping(value, 'limits', _LIMITS_FIELDS, 'the limits')
        kwargs: dict[str, Any] = {}
        policy: dict[str, Any] = {}
        if 'max_concurrent_per_host' in raw:
            kwargs['max_concurrent_per_host'] = self.integer(
                raw['max_concurrent_per_host'], 'limits.max_concurrent_per_host', 'migrations', 1,
            )
        if raw.get('max_concurrent_per_link') is not None:
            kwargs['max_concurrent_per_link'] = self.integer(
                raw['max_concurrent_per_link'], 'limits.max_concurrent_per_link', 'migrations', 1,
            )
        if 'max_downtime_ms' in raw:
            ms = self.number(raw['max_downtime_ms'], 'limits.max_downtime_ms', 'ms')
            policy['max_downtime_s'] = ms / 1000.0
        if 'max_rounds' in raw:
            policy['max_rounds'] = self.integer(raw['max_rounds'], 'limits.max_rounds', 'rounds', 1)
        if 'on_stall' in raw:
            policy['on_stall'] = self.choice(raw['on_stall'], 'limits.on_stall', STALL_POLICIES)
        if 'auto_converge' in raw:
            flag = raw['auto_converge']
            if not isinstance(flag, bool):
                self.fail('limits.auto_converge', f'expected true or false, got {_show(flag)}')
            policy['auto_converge'] = flag
        try:
            return Limits(**kwargs, policy=CompletionPolicy(**policy))
        except ValueError as e:  # pragma: no cover - the checks above are stricter
            self.fail('limits', str(e))


# -- message helpers --------------------------------------------------------------------------


def _join(path: str, key: str) -> str:
    return f'{path}.{key}' if path else key


def _suggest(word: Any, choices) -> str:
    if not isinstance(word, str):
        return ''
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f'; did you mean {close[0]}?' if close else ''


def _listing(names, limit: int = 10) -> str:
    names = list(names)
    shown = ', '.join(str(n) for n in names[:limit])
    if len(names) > limit:
        shown += f', ... ({len(names) - limit} more)'
    return shown


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _show(value: Any) -> str:
    if value is None:
        return 'null'
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, list):
        return f'a list ({_one_line(repr(value))[:60]})'
    if isinstance(value, dict):
        return 'a mapping'
    return type(value).__name__


def load_scenario(arg: str) -> Scenario:
    """A scenario by file path, or by the name of a shipped one."""
    if os.path.exists(arg) or arg.endswith(('.yaml', '.yml')):
        return load(arg)
    names = shipped()
    if arg not in names:
        raise exception.UsageError(
            f"no scenario file {arg!r} and no shipped scenario of that name "
            f"(shipped: {', '.join(sorted(names))})")
    return load_shipped(arg)
