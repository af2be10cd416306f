"""The scenario loader: shipped scenarios, error messages, random valid and corrupted input."""

from __future__ import annotations

import copy
import math
import pickle
import textwrap

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slm_plugin import exception
from slm_plugin.model import VM, CompletionPolicy, predict
from slm_plugin.scenario.loader import from_dict, load, load_shipped, loads, shipped
from slm_plugin.scenario.model import GROUP_POLICIES, Limits, Scenario

NIC_10GBE = 1192


def base() -> dict:
    """A small valid scenario: 3 hosts per site, two groups, a request to dc-west."""
    return {
        'name': 'small',
        'description': 'Two groups from dc-east to dc-west.',
        'sites': {
            'dc-east': {'hosts': [
                {'name': 'east-1', 'nic_mibps': 1192, 'memory_mib': 262144},
                {'name': 'east-2', 'nic_mibps': 1192, 'memory_mib': 262144},
                {'name': 'east-3', 'nic_mibps': 1192},
            ]},
            'dc-west': {'hosts': [
                {'name': 'west-1', 'nic_mibps': 1192, 'memory_mib': 262144},
                {'name': 'west-2', 'nic_mibps': 1192, 'memory_mib': 262144},
                {'name': 'west-3', 'nic_mibps': 1192, 'memory_mib': 262144},
            ]},
        },
        'links': [{'between': ['dc-east', 'dc-west'], 'capacity_mibps': 238, 'latency_ms': 30}],
        'groups': [
            {
                'name': 'web',
                'policy': 'anti-affinity',
                'members': [
                    {'name': 'a', 'host': 'east-1', 'memory_mib': 16384, 'dirty_rate_mibps': 60,
                     'wws_mib': 2048},
                    {'name': 'b', 'host': 'east-2', 'memory_mib': 8192, 'dirty_rate_mibps': 30,
                     'wws_mib': 1024, 'disk_gib': 40, 'disk_write_mibps': 5, 'wire_ratio': 0.8},
                    {'name': 'c', 'host': 'east-3', 'memory_mib': 4096},
                ],
                'traffic': [{'between': ['a', 'b'], 'mibps': 20}],
            },
            {'name': 'db', 'members': [{'name': 'd', 'host': 'east-1', 'memory_mib': 32768}]},
        ],
        'request': {'to_site': 'dc-west'},
        'limits': {'max_concurrent_per_host': 2, 'max_concurrent_per_link': None,
                   'max_downtime_ms': 300, 'max_rounds': 30, 'on_stall': 'postcopy',
                   'auto_converge': False},
    }


def _member(d: dict, g: int, m: int) -> dict:
    return d['groups'][g]['members'][m]


# -- the base scenario and its mapping to the dataclasses ----------------------------------------


def test_base_scenario_maps_every_field():
    s = from_dict(base(), 'base')
    assert isinstance(s, Scenario)
    assert s.name == 'small' and s.description.startswith('Two groups')
    assert s.sites == ('dc-east', 'dc-west')
    assert [h.name for h in s.hosts] == ['east-1', 'east-2', 'east-3', 'west-1', 'west-2', 'west-3']
    assert s.host('east-3').memory_mib is None and s.host('west-1').site == 'dc-west'
    link = s.link_between('dc-west', 'dc-east')
    assert (link.capacity_mibps, link.latency_ms) == (238, 30)
    web, db = s.groups
    assert web.policy == 'anti-affinity' and db.policy == 'none'
    assert web.traffic == (('a', 'b', 20.0),)
    b = web.members[1]
    assert (b.name, b.group, b.host) == ('b', 'web', 'east-2')
    assert b.vm == VM(memory_mib=8192, dirty_rate_mibps=30, wws_mib=1024, disk_mib=40 * 1024,
                      disk_write_mibps=5, wire_ratio=0.8)
    assert web.members[2].vm == VM(memory_mib=4096)  # defaults: clean, shared storage
    assert s.request.to_site == 'dc-west' and s.request.to_hosts == () and s.request.groups == ()
    assert s.limits.max_concurrent_per_host == 2 and s.limits.max_concurrent_per_link is None
    assert s.limits.policy == CompletionPolicy(max_downtime_s=0.3, max_rounds=30,
                                               on_stall='postcopy', auto_converge=False)


def test_defaults_when_limits_links_and_optional_fields_are_left_out():
    d = base()
    del d['limits'], d['description']
    del d['groups'][0]['policy'], d['groups'][0]['traffic']
    s = from_dict(d)
    assert s.limits == Limits()
    assert s.description == ''
    assert s.groups[0].policy == 'none' and s.groups[0].traffic == ()


def test_request_to_hosts_and_groups():
    d = base()
    d['request'] = {'to_hosts': ['west-1', 'west-2'], 'groups': ['db']}
    s = from_dict(d)
    assert s.request.to_site is None
    assert s.request.to_hosts == ('west-1', 'west-2') and s.request.groups == ('db',)


def test_only_requested_groups_are_checked_against_the_target():
    d = base()
    d['groups'][1]['members'][0]['host'] = 'west-1'  # db is in dc-west already
    d['request']['groups'] = ['web']
    assert from_dict(d).request.groups == ('web',)


def test_limits_integral_float_and_explicit_nulls():
    d = base()
    d['limits'] = {'max_rounds': 12.0, 'max_concurrent_per_link': 3, 'max_downtime_ms': 1500}
    d['groups'][0]['members'][0]['wws_mib'] = None
    s = from_dict(d)
    assert s.limits.policy.max_rounds == 12 and isinstance(s.limits.policy.max_rounds, int)
    assert s.limits.max_concurrent_per_link == 3
    assert s.limits.policy.max_downtime_s == pytest.approx(1.5)
    assert s.limits.policy.on_stall == 'pause'  # CompletionPolicy's default
    assert s.groups[0].members[0].vm.wws_mib is None


def test_yaml_text_loads_like_the_dict_and_reads_exponents_as_numbers():
    text = yaml.safe_dump(base(), sort_keys=False)
    text = text.replace('capacity_mibps: 238', 'capacity_mibps: 2.38e2')
    assert loads(text) == from_dict(base())
    text = text.replace('capacity_mibps: 2.38e2', 'capacity_mibps: 1e3')
    assert loads(text).links[0].capacity_mibps == 1000


def test_yaml_anchors_and_merge_keys_work():
    text = textwrap.dedent("""\
        name: merged
        sites:
          dc-east: {hosts: [{name: e1, nic_mibps: 1192}, {name: e2, nic_mibps: 1192}]}
          dc-west: {hosts: [{name: w1, nic_mibps: 1192}]}
        links: [{between: [dc-east, dc-west], capacity_mibps: 119}]
        groups:
          - name: g
            members:
              - &worker {name: w-1, host: e1, memory_mib: 8192, dirty_rate_mibps: 10}
              - {<<: *worker, name: w-2, host: e2}
        request: {to_site: dc-west}
    """)
    s = loads(text, 'merged.yaml')
    assert [(m.name, m.host, m.vm.memory_mib) for m in s.members()] == [
        ('w-1', 'e1', 8192), ('w-2', 'e2', 8192),
    ]


def test_load_reads_a_file_and_names_it(tmp_path):
    path = tmp_path / 'mine.yaml'
    path.write_text(yaml.safe_dump(base()))
    assert load(path) == from_dict(base())
    d = base()
    _member(d, 0, 2)['memory_mib'] = -5
    path.write_text(yaml.safe_dump(d))
    with pytest.raises(exception.ScenarioError) as err:
        load(str(path))
    assert str(err.value) == (
        f'{path}: groups[0].members[2].memory_mib: must be greater than 0, got -5'
    )
    assert err.value.path == 'groups[0].members[2].memory_mib'


def test_missing_file_is_a_scenario_error(tmp_path):
    with pytest.raises(exception.ScenarioError, match='nothere.yaml: cannot read the file'):
        load(tmp_path / 'nothere.yaml')


def test_scenario_error_is_a_value_error_and_pickles():
    assert issubclass(exception.ScenarioError, ValueError)
    err = exception.ScenarioError('a.yaml', 'limits.max_rounds', 'must be at least 1, got 0')
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err) == 'a.yaml: limits.max_rounds: must be at least 1, got 0'
    assert (again.source, again.path, again.problem) == (err.source, err.path, err.problem)


def test_a_number_beyond_any_float_is_rejected():
    d = base()
    _member(d, 0, 0)['memory_mib'] = 10**400
    with pytest.raises(exception.ScenarioError,
            match=r'members\[0\]\.memory_mib: must be a finite number'):
        from_dict(d)


# -- shipped scenarios ----------------------------------------------------------------------------

# name -> (hosts, groups, members, total member memory GiB, link MiB/s)
SHIPPED = {
    'hadoop': (16, 1, 8, 144, 596),
    'three-tier-web': (8, 1, 7, 62, 119),
    'database-heavy': (8, 1, 4, 80, 238),
    'maintenance-site': (18, 12, 39, 506, 1192),
}


def test_shipped_lists_every_yaml_file():
    found = shipped()
    assert set(SHIPPED) <= set(found)
    assert all(p.is_file() and p.suffix == '.yaml' for p in found.values())
    assert list(found) == sorted(found)


@pytest.mark.parametrize('name', sorted(SHIPPED))
def test_shipped_scenario_loads_with_its_numbers(name):
    s = load_shipped(name)
    hosts, groups, members, memory_gib, link = SHIPPED[name]
    assert (len(s.hosts), len(s.groups), len(s.members())) == (hosts, groups, members)
    assert sum(m.vm.memory_mib for m in s.members()) == memory_gib * 1024
    assert s.sites == ('dc-east', 'dc-west')
    assert s.link_between('dc-east', 'dc-west').capacity_mibps == link
    assert s.request.to_site == 'dc-west'
    assert s.description and '\n' not in s.description
    # the YAML document and its plain-data form give the same scenario
    path = shipped()[name]
    assert from_dict(yaml.safe_load(path.read_text()), path.name) == s
    assert load(path) == s


@pytest.mark.parametrize('name', sorted(SHIPPED))
def test_shipped_scenario_is_realistic_and_feasible(name):
    s = load_shipped(name)
    path = shipped()[name]
    assert path.read_text().startswith('# '), 'a comment header says what the file models'
    assert all(h.nic_mibps == NIC_10GBE for h in s.hosts)
    assert all(119 <= link.capacity_mibps <= 1192 for link in s.links)
    # every source host holds its guests
    for h in s.hosts:
        used = sum(m.vm.memory_mib for m in s.members() if m.host == h.name)
        assert used <= h.memory_mib, h.name
    # the target site can take every group, honouring the hard policies
    targets = {h.name: h.memory_mib for h in s.hosts if h.site == s.request.to_site}
    assert _place(s.groups, targets), f'{name}: target site cannot hold the groups'


def _place(groups, free: dict[str, float]) -> bool:
    """First-fit decreasing placement of the groups; True when everything fits."""
    free = dict(free)
    for g in sorted(groups, key=lambda g: -sum(m.vm.memory_mib for m in g.members)):
        if g.policy == 'affinity':
            need = sum(m.vm.memory_mib for m in g.members)
            host = next((h for h in sorted(free, key=free.get, reverse=True) if free[h] >= need),
                        None)
            if host is None:
                return False
            free[host] -= need
            continue
        used: set[str] = set()
        for m in sorted(g.members, key=lambda m: -m.vm.memory_mib):
            choices = [h for h in sorted(free, key=free.get, reverse=True)
                       if free[h] >= m.vm.memory_mib
                       and not (g.policy == 'anti-affinity' and h in used)]
            if not choices:
                return False
            free[choices[0]] -= m.vm.memory_mib
            used.add(choices[0])
    return True


def test_hadoop_has_one_block_migrated_worker():
    s = load_shipped('hadoop')
    (group,) = s.groups
    assert group.policy == 'anti-affinity'
    assert group.members[0].name == 'namenode'
    assert group.members[0].vm == VM(memory_mib=16384, dirty_rate_mibps=60, wws_mib=2048)
    block = [m for m in s.members() if m.vm.disk_mib > 0]
    assert [(m.name, m.vm.disk_mib, m.vm.disk_write_mibps) for m in block] == [
        ('worker-6', 40 * 1024, 5),
    ]
    assert all(8192 <= m.vm.memory_mib <= 32768 for m in group.members[1:])


def test_three_tier_web_has_traffic_between_tiers():
    s = load_shipped('three-tier-web')
    (group,) = s.groups
    tiers = {m.name: m.name.split('-')[0] for m in group.members}
    assert sorted(set(tiers.values())) == ['app', 'db', 'lb', 'web']
    pairs = {frozenset((tiers[a], tiers[b])) for a, b, _ in group.traffic}
    assert pairs == {frozenset(p) for p in (('lb', 'web'), ('web', 'app'), ('app', 'db'))}


def test_database_heavy_db_needs_more_than_its_fair_share():
    s = load_shipped('database-heavy')
    (group,) = s.groups
    fair = s.links[0].capacity_mibps / len(group.members)
    db = next(m for m in group.members if m.name == 'db-primary')
    assert db.vm.dirty_rate_mibps == 45 and db.vm.wws_mib == 6144
    assert 0.7 * fair < db.vm.dirty_rate_mibps < fair
    policy = s.limits.policy
    assert not predict(db.vm, policy, fair).converged
    assert predict(db.vm, policy, 1.25 * fair).converged
    for m in group.members:
        if m is not db:
            assert predict(m.vm, policy, fair).converged, m.name


def test_maintenance_site_evacuates_every_group():
    s = load_shipped('maintenance-site')
    east = [h for h in s.hosts if h.site == 'dc-east']
    assert len(east) == 8
    assert {m.host for m in s.members()} <= {h.name for h in east}
    assert all(2 <= len(g.members) <= 6 for g in s.groups)
    assert {g.policy for g in s.groups} == set(GROUP_POLICIES)
    assert s.request.groups == () and s.limits.max_concurrent_per_host == 2
    assert len(s.links) == 1


def test_load_shipped_unknown_name_suggests():
    with pytest.raises(exception.ScenarioError,
            match=r"no shipped scenario 'hadop'; did you mean hadoop\?"):
        load_shipped('hadop')


# -- error messages -------------------------------------------------------------------------------


def _set(path: str, value):
    """A mutation that sets d[path] (dotted keys, [i] indexes) to value."""
    def mutate(d):
        container, key = _locate(d, path)
        container[key] = value
    return mutate


def _delete(path: str):
    def mutate(d):
        container, key = _locate(d, path)
        del container[key]
    return mutate


def _locate(d, path: str):
    parts: list = []
    for part in path.split('.'):
        name, *indexes = part.split('[')
        if name:
            parts.append(name)
        parts.extend(int(i.rstrip(']')) for i in indexes)
    for p in parts[:-1]:
        d = d[p]
    return d, parts[-1]


def _rename_key(path: str, new: str):
    def mutate(d):
        container, key = _locate(d, path)
        container[new] = container.pop(key)
    return mutate


def _all(*mutations):
    def mutate(d):
        for m in mutations:
            m(d)
    return mutate


M = 'groups[0].members'
ERRORS = [
    # (id, mutation, expected "path: problem" text in the message)
    ('negative-memory', _set(f'{M}[2].memory_mib', -5),
     f'{M}[2].memory_mib: must be greater than 0, got -5'),
    ('zero-memory', _set(f'{M}[0].memory_mib', 0), f'{M}[0].memory_mib: must be greater than 0'),
    ('negative-dirty', _set(f'{M}[0].dirty_rate_mibps', -1.5),
     f'{M}[0].dirty_rate_mibps: must not be negative, got -1.5'),
    ('nan', _set(f'{M}[0].dirty_rate_mibps', math.nan),
     f'{M}[0].dirty_rate_mibps: must be a finite number, got nan'),
    ('unknown-host', _set(f'{M}[1].host', 'east-9'),
     f"{M}[1].host: unknown host 'east-9' (known: east-1, east-2, east-3, west-1"),
    ('empty-group', _set('groups[1].members', []),
     'groups[1].members: a group needs at least one member'),
    ('no-groups', _set('groups', []), 'groups: a scenario needs at least one group'),
    ('unknown-site', _set('request.to_site', 'dc-north'),
     "request.to_site: site 'dc-north' does not exist (sites: dc-east, dc-west)"),
    ('target-is-source', _set('request.to_site', 'dc-east'),
     'request.to_site: target site dc-east is where every member already is'),
    ('member-in-target', _set(f'{M}[2].host', 'west-3'),
     f'{M}[2].host: west-3 is in dc-west already, the target site (request.to_site)'),
    ('unknown-key', _rename_key(f'{M}[0].dirty_rate_mibps', 'dirty_rate'),
     f'{M}[0].dirty_rate: unknown field; did you mean dirty_rate_mibps?'),
    ('unknown-key-no-match', _set('groups[0].colour', 'red'),
     'groups[0].colour: unknown field (fields of a group: name, policy, members, traffic)'),
    ('unit-string', _set(f'{M}[0].dirty_rate_mibps', '40MB/s'),
     f"{M}[0].dirty_rate_mibps: expected a number of MiB/s, got '40MB/s'"),
    ('unit-string-memory', _set(f'{M}[0].memory_mib', '16 GiB'),
     f"{M}[0].memory_mib: expected a number of MiB, got '16 GiB'"),
    ('bool-number', _set('sites.dc-east.hosts[0].nic_mibps', True),
     'sites.dc-east.hosts[0].nic_mibps: expected a number of MiB/s, got true'),
    ('list-number', _set('links[0].latency_ms', [30]),
     'links[0].latency_ms: expected a number of ms, got a list ([30])'),
    ('disk-unit', _set(f'{M}[1].disk_gib', '40G'),
     f"{M}[1].disk_gib: expected a number of GiB, got '40G'"),
    ('wire-ratio', _set(f'{M}[1].wire_ratio', 1.5),
     f'{M}[1].wire_ratio: must be at most 1, got 1.5'),
    ('wws-above-memory', _set(f'{M}[0].wws_mib', 20000),
     f'{M}[0].wws_mib: the writable working set cannot exceed memory_mib (16384), got 20000'),
    ('missing-memory', _delete(f'{M}[0].memory_mib'),
     f'{M}[0].memory_mib: required field missing'),
    ('missing-nic', _delete('sites.dc-west.hosts[1].nic_mibps'),
     'sites.dc-west.hosts[1].nic_mibps: required field missing'),
    ('missing-request', _delete('request'), 'request: required field missing'),
    ('name-not-string', _set(f'{M}[0].name', 7),
     f'{M}[0].name: expected a name (a non-empty string), got 7'),
    ('duplicate-host', _set('sites.dc-west.hosts[2].name', 'east-1'),
     "sites.dc-west.hosts[2].name: duplicate host 'east-1' (also sites.dc-east.hosts[0])"),
    ('duplicate-member', _set('groups[1].members[0].name', 'a'),
     "groups[1].members[0].name: duplicate member 'a' (also groups[0].members[0])"),
    ('duplicate-group', _set('groups[1].name', 'web'),
     "groups[1].name: duplicate group 'web' (also groups[0])"),
    ('link-unknown-site', _set('links[0].between', ['dc-east', 'dc-south']),
     "links[0].between[1]: site 'dc-south' does not exist (sites: dc-east, dc-west)"),
    ('link-same-site', _set('links[0].between', ['dc-east', 'dc-east']),
     "links[0].between: expected two different sites, got 'dc-east' twice"),
    ('link-three-sites', _set('links[0].between', ['dc-east', 'dc-west', 'dc-x']),
     'links[0].between: expected a list of two sites'),
    ('duplicate-link', lambda d: d['links'].append(
        {'between': ['dc-west', 'dc-east'], 'capacity_mibps': 100}),
     'links[1].between: a link between dc-west and dc-east is already given at links[0]'),
    ('zero-capacity', _set('links[0].capacity_mibps', 0),
     'links[0].capacity_mibps: must be greater than 0, got 0'),
    ('no-link', _set('links', []),
     'request.to_site: no link between dc-east and dc-west (needed by groups[0].members[0]'),
    ('traffic-non-member', _set('groups[0].traffic[0].between', ['a', 'd']),
     "groups[0].traffic[0].between[1]: 'd' is not a member of group 'web' (members: a, b, c)"),
    ('traffic-duplicate', lambda d: d['groups'][0]['traffic'].append(
        {'between': ['b', 'a'], 'mibps': 1}),
     'groups[0].traffic[1].between: traffic between b and a is already given at '
     'groups[0].traffic[0]'),
    ('traffic-negative', _set('groups[0].traffic[0].mibps', -20),
     'groups[0].traffic[0].mibps: must be greater than 0, got -20'),
    ('policy-typo', _set('groups[0].policy', 'antiaffinity'),
     "groups[0].policy: expected one of anti-affinity, affinity, soft-anti-affinity, "
     "soft-affinity, none, got 'antiaffinity'; did you mean anti-affinity?"),
    ('anti-affinity-colocated', _set(f'{M}[2].host', 'east-1'),
     f"{M}[2].host: anti-affinity group 'web' already has member 'a' on east-1"),
    ('affinity-split', _set('groups[0].policy', 'affinity'),
     f"{M}[1].host: affinity group 'web' has its members on east-1, not east-2"),
    ('request-both', _set('request.to_hosts', ['west-1']),
     'request: give to_site or to_hosts, not both'),
    ('request-neither', _set('request', {}),
     'request: give to_site (a site) or to_hosts (a list of hosts)'),
    ('request-unknown-group', _set('request.groups', ['wbe']),
     "request.groups[0]: unknown group 'wbe'; did you mean web? (groups: web, db)"),
    ('request-empty-groups', _set('request.groups', []),
     'request.groups: name at least one group'),
    ('to-hosts-unknown', _set('request', {'to_hosts': ['west-1', 'west-7']}),
     "request.to_hosts[1]: unknown host 'west-7' (known: east-1"),
    ('to-hosts-twice', _set('request', {'to_hosts': ['west-1', 'west-1']}),
     "request.to_hosts[1]: host 'west-1' is listed twice"),
    ('to-hosts-source', _set('request', {'to_hosts': ['west-1', 'east-3']}),
     f'{M}[2].host: east-3 is one of the target hosts already (request.to_hosts)'),
    ('to-hosts-no-link', _all(_set('links', []), _set('request', {'to_hosts': ['west-1']})),
     'request.to_hosts: no link from dc-east to dc-west, where the target hosts are'),
    ('on-stall', _set('limits.on_stall', 'post-copy'),
     "limits.on_stall: expected one of pause, postcopy, none, got 'post-copy'; "
     "did you mean postcopy?"),
    ('max-rounds-fraction', _set('limits.max_rounds', 2.5),
     'limits.max_rounds: expected a whole number of rounds, got 2.5'),
    ('max-rounds-zero', _set('limits.max_rounds', 0),
     'limits.max_rounds: must be at least 1, got 0'),
    ('concurrency-string', _set('limits.max_concurrent_per_host', '2'),
     "limits.max_concurrent_per_host: expected a whole number of migrations, got '2'"),
    ('auto-converge-string', _set('limits.auto_converge', 'yes'),
     "limits.auto_converge: expected true or false, got 'yes'"),
    ('downtime-negative', _set('limits.max_downtime_ms', -300),
     'limits.max_downtime_ms: must not be negative, got -300'),
    ('limits-typo', _rename_key('limits.max_rounds', 'max_round'),
     'limits.max_round: unknown field; did you mean max_rounds?'),
    ('no-sites', _set('sites', {}), 'sites: a scenario needs at least one site'),
    ('site-without-hosts', _set('sites.dc-west.hosts', []),
     'sites.dc-west.hosts: a site needs at least one host'),
    ('sites-as-list', _set('sites', ['dc-east']),
     'sites: expected a mapping of site name to its hosts, got a list'),
    ('member-as-list', _set(f'{M}[0]', ['a', 'east-1']),
     f'{M}[0]: expected a mapping (a member), got a list'),
    ('top-level-typo', _rename_key('groups', 'group'),
     'group: unknown field; did you mean groups?'),
]


@pytest.mark.parametrize(('mutate', 'expected'), [e[1:] for e in ERRORS],
                         ids=[e[0] for e in ERRORS])
def test_error_names_the_field_and_the_problem(mutate, expected):
    d = base()
    mutate(d)
    with pytest.raises(exception.ScenarioError) as err:
        from_dict(d, 'bad.yaml')
    message = str(err.value)
    assert message.startswith('bad.yaml: ')
    assert expected in message
    assert '\n' not in message
    assert message == f'bad.yaml: {err.value.path}: {err.value.problem}'


YAML_ERRORS = [
    ('syntax', 'name: x\nsites:\n  dc-east: [\n', 'line 4, column 1: invalid YAML: '),
    ('bad-indent', 'name: x\n  sites: y\n', 'line 2, column 8: invalid YAML: '
     'mapping values are not allowed here'),
    ('duplicate-key', 'name: x\nname: y\n',
     "line 2, column 1: invalid YAML: while constructing a mapping: "
     "found duplicate key 'name' (first given on line 1)"),
    ('two-documents', 'name: x\n---\nname: y\n', 'invalid YAML: '),
    ('empty', '', 'bad.yaml: the scenario is empty'),
    ('top-level-list', '- name: x\n', 'bad.yaml: expected a mapping (a scenario), got a list'),
    ('unit-in-yaml',
     yaml.safe_dump(base()).replace('dirty_rate_mibps: 60', 'dirty_rate_mibps: 40MB/s'),
     f"{M}[0].dirty_rate_mibps: expected a number of MiB/s, got '40MB/s'"),
]


@pytest.mark.parametrize(('text', 'expected'), [e[1:] for e in YAML_ERRORS],
                         ids=[e[0] for e in YAML_ERRORS])
def test_yaml_error_names_the_line(text, expected):
    with pytest.raises(exception.ScenarioError) as err:
        loads(text, 'bad.yaml')
    assert expected in str(err.value)
    assert str(err.value).startswith('bad.yaml: ')
    assert '\n' not in str(err.value)


def test_long_host_listing_is_shortened():
    d = base()
    d['sites']['dc-east']['hosts'] += [
        {'name': f'east-{i}', 'nic_mibps': 1192} for i in range(4, 20)
    ]
    _member(d, 0, 0)['host'] = 'east-99'
    with pytest.raises(exception.ScenarioError,
            match=r'known: east-1, .*east-10, \.\.\. \(12 more\)\)$'):
        from_dict(d)


# -- random valid and corrupted scenarios --------------------------------------------------------

positive = st.one_of(st.integers(1, 10**6), st.floats(0.5, 1e6, allow_nan=False))
non_negative = st.one_of(st.integers(0, 10**4), st.floats(0, 1e4, allow_nan=False))


@st.composite
def scenarios(draw) -> dict:
    sources = [f'east-{i}' for i in range(1, draw(st.integers(1, 4)) + 1)]
    targets = [f'west-{i}' for i in range(1, draw(st.integers(1, 4)) + 1)]

    def host(name):
        h = {'name': name, 'nic_mibps': draw(positive)}
        if draw(st.booleans()):
            h['memory_mib'] = draw(positive)
        return h

    groups = []
    count = 0
    for g in range(draw(st.integers(1, 3))):
        size = draw(st.integers(1, 4))
        policies = ['none', 'soft-affinity', 'soft-anti-affinity', 'affinity']
        if size <= len(sources):
            policies.append('anti-affinity')
        policy = draw(st.sampled_from(policies))
        if policy == 'anti-affinity':
            hosts = draw(st.permutations(sources))[:size]
        elif policy == 'affinity':
            hosts = [draw(st.sampled_from(sources))] * size
        else:
            hosts = [draw(st.sampled_from(sources)) for _ in range(size)]
        members = []
        for h in hosts:
            count += 1
            memory = draw(st.integers(1, 65536))
            m = {'name': f'vm-{count}', 'host': h, 'memory_mib': memory}
            if draw(st.booleans()):
                m['dirty_rate_mibps'] = draw(non_negative)
            if draw(st.booleans()):
                m['wws_mib'] = draw(st.integers(1, memory))
            if draw(st.booleans()):
                m['disk_gib'] = draw(non_negative)
                m['disk_write_mibps'] = draw(non_negative)
            if draw(st.booleans()):
                m['wire_ratio'] = draw(st.floats(0.05, 1.0))
            members.append(m)
        group = {'name': f'group-{g}', 'policy': policy, 'members': members}
        names = [m['name'] for m in members]
        if len(names) >= 2:
            pairs = draw(st.lists(
                st.tuples(st.sampled_from(names), st.sampled_from(names))
                .filter(lambda p: p[0] != p[1]),
                max_size=3, unique_by=lambda p: frozenset(p),
            ))
            group['traffic'] = [{'between': list(p), 'mibps': draw(positive)} for p in pairs]
        groups.append(group)
    request = {'to_site': 'dc-west'}
    if draw(st.booleans()):
        request['groups'] = draw(st.lists(
            st.sampled_from([g['name'] for g in groups]), min_size=1, unique=True,
        ))
    limits = {}
    if draw(st.booleans()):
        limits['max_concurrent_per_host'] = draw(st.integers(1, 8))
    if draw(st.booleans()):
        limits['max_concurrent_per_link'] = draw(st.none() | st.integers(1, 64))
    if draw(st.booleans()):
        limits['max_downtime_ms'] = draw(non_negative)
    if draw(st.booleans()):
        limits['max_rounds'] = draw(st.integers(1, 100))
    if draw(st.booleans()):
        limits['on_stall'] = draw(st.sampled_from(['pause', 'postcopy', 'none']))
    if draw(st.booleans()):
        limits['auto_converge'] = draw(st.booleans())
    return {
        'name': 'random',
        'sites': {
            'dc-east': {'hosts': [host(n) for n in sources]},
            'dc-west': {'hosts': [host(n) for n in targets]},
        },
        'links': [{'between': ['dc-east', 'dc-west'], 'capacity_mibps': draw(positive),
                   'latency_ms': draw(non_negative)}],
        'groups': groups,
        'request': request,
        'limits': limits,
    }


def _numeric_fields(value, path=''):
    """(path, container, key) of every number in the data, paths as the loader writes them."""
    if isinstance(value, dict):
        items = ((f'{path}.{k}' if path else k, k, v) for k, v in value.items())
    elif isinstance(value, list):
        items = ((f'{path}[{i}]', i, v) for i, v in enumerate(value))
    else:
        return
    for sub, key, v in items:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            yield sub, value, key
        else:
            yield from _numeric_fields(v, sub)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_random_valid_scenarios_load(data):
    s = from_dict(copy.deepcopy(data), 'random.yaml')
    assert len(s.groups) == len(data['groups'])
    assert len(s.hosts) == sum(len(site['hosts']) for site in data['sites'].values())
    for g, raw in zip(s.groups, data['groups'], strict=True):
        assert g.policy == raw['policy']
        for m, rm in zip(g.members, raw['members'], strict=True):
            assert m.vm.memory_mib == rm['memory_mib']
            assert m.vm.dirty_rate_mibps == rm.get('dirty_rate_mibps', 0)
            assert m.vm.wws_mib == rm.get('wws_mib')
            assert m.vm.disk_mib == rm.get('disk_gib', 0) * 1024
            assert m.vm.wire_ratio == rm.get('wire_ratio', 1.0)
    # the same data as YAML text gives the same scenario
    assert loads(yaml.safe_dump(data), 'random.yaml') == s


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.data())
def test_a_negative_number_is_rejected_naming_its_field(data, draw):
    fields = list(_numeric_fields(data))
    path, container, key = draw.draw(st.sampled_from(fields), label='field')
    container[key] = draw.draw(
        st.one_of(st.integers(-10**6, -1), st.floats(-1e6, -1e-3)), label='negative',
    )
    with pytest.raises(exception.ScenarioError) as err:
        from_dict(data, 'random.yaml')
    assert err.value.path == path
    assert str(err.value).startswith(f'random.yaml: {path}: ')
