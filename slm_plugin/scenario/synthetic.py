"""Large generated scenarios for benchmarks: many groups, two sites, one WAN link."""

from __future__ import annotations

import random

from slm_plugin.model import VM, CompletionPolicy
from slm_plugin.scenario.model import Group, Host, Limits, Link, Member, Request, Scenario

SIZES_MIB = (2048, 4096, 8192, 16384)


def generate(groups: int, members_per_group: int, seed: int = 0, hosts_per_site: int | None = None,
             link_mibps: float = 1192.0, nic_mibps: float = 1192.0) -> Scenario:
    """Anti-affinity groups spread over enough hosts, all moving east to west."""
    rng = random.Random(seed)
    n_hosts = hosts_per_site or max(members_per_group, groups * members_per_group // 4)
    east = [Host(f'east-{i}', 'east', nic_mibps) for i in range(n_hosts)]
    west = [Host(f'west-{i}', 'west', nic_mibps) for i in range(n_hosts)]
    out = []
    k = 0
    for g in range(groups):
        members = []
        for j in range(members_per_group):
            memory = rng.choice(SIZES_MIB)
            vm = VM(memory_mib=memory, dirty_rate_mibps=round(rng.uniform(0, 40), 1),
                    wws_mib=round(memory * rng.uniform(0.05, 0.3)))
            members.append(Member(f'g{g}-m{j}', f'g{g}', east[k % n_hosts].name, vm))
            k += 1
        out.append(Group(f'g{g}', tuple(members), 'anti-affinity'))
    return Scenario(
        name=f'synthetic-{groups}x{members_per_group}', hosts=tuple(east + west),
        links=(Link('east', 'west', link_mibps, 10.0),), groups=tuple(out),
        request=Request(to_site='west'),
        limits=Limits(max_concurrent_per_host=2, policy=CompletionPolicy(on_stall='postcopy')),
    )
