"""Destination hosts that keep each server group's policy and fit in memory.

Anti-affinity members get distinct hosts, affinity members share one host,
others go to the host with the most free memory. Deterministic: ties break by
host name. The soft policies are kept when possible and relaxed otherwise.
"""

from __future__ import annotations

import heapq

from slm_plugin import exception
from slm_plugin.scenario.model import Group, Scenario


def place(scenario: Scenario) -> dict[str, str]:
    """Member name -> destination host for every member the request moves."""
    req = scenario.request
    if req.to_hosts:
        candidates = [scenario.host(h) for h in req.to_hosts]
    elif req.to_site:
        candidates = [h for h in scenario.hosts if h.site == req.to_site]
    else:
        raise exception.PlanError('the request names neither a target site nor target hosts')
    if not candidates:
        raise exception.PlanError(f'no hosts in target site {req.to_site!r}')
    free = {h.name: (h.memory_mib if h.memory_mib is not None else float('inf'))
            for h in candidates}
    dest: dict[str, str] = {}
    hosts = _Hosts(free)
    sites = {h.name: h.site for h in scenario.hosts}
    for group in sorted(moving_groups(scenario), key=_group_size, reverse=True):
        for m in group.members:
            if req.to_site and sites[m.host] == req.to_site:
                raise exception.PlanError(
                    f'{group.name}/{m.name} is already in target site {req.to_site}; '
                    'pick another site or name target hosts')
            if m.host in free:
                raise exception.PlanError(
                    f'{group.name}/{m.name} is already on target host {m.host}')
        dest.update(_place_group(group, hosts))
    return dest


def moving_groups(scenario: Scenario) -> list[Group]:
    wanted = scenario.request.groups
    groups = [g for g in scenario.groups if not wanted or g.name in wanted]
    missing = set(wanted) - {g.name for g in scenario.groups}
    if missing:
        raise exception.PlanError(f"unknown server group(s): {', '.join(sorted(missing))}")
    for g in groups:
        if not g.members:
            raise exception.PlanError(f'server group {g.name} has no members')
    return groups


def _group_size(group: Group) -> float:
    return sum(m.vm.memory_mib for m in group.members)


class _Hosts:
    """Target hosts by free memory, roomiest first (ties by name): O(log n) a pick."""

    def __init__(self, free: dict[str, float]):
        self.heap = [(-room, name) for name, room in free.items()]
        heapq.heapify(self.heap)

    def roomiest(self) -> float:
        return -self.heap[0][0] if self.heap else 0.0

    def take(self, need: float, avoid=()) -> str | None:
        skipped = []
        chosen = None
        while self.heap:
            neg, name = heapq.heappop(self.heap)
            if -neg < need:
                skipped.append((neg, name))
                break  # the roomiest left cannot hold it: none can
            if name in avoid:
                skipped.append((neg, name))
                continue
            chosen = name
            heapq.heappush(self.heap, (neg + need, name))
            break
        for item in skipped:
            heapq.heappush(self.heap, item)
        return chosen


def _place_group(group: Group, hosts: _Hosts) -> dict[str, str]:
    members = sorted(group.members, key=lambda m: (-m.vm.memory_mib, m.name))
    if group.policy in ('affinity', 'soft-affinity'):
        need = sum(m.vm.memory_mib for m in members)
        host = hosts.take(need)
        if host is not None:
            return {m.name: host for m in members}
        if group.policy == 'affinity':
            raise exception.PlanError(
                f'group {group.name} (affinity) needs one host with {need:.0f} MiB '
                f'free in the target; the roomiest has {hosts.roomiest():.0f} MiB')
    out: dict[str, str] = {}
    used: set[str] = set()
    for m in members:
        avoid = used if group.policy in ('anti-affinity', 'soft-anti-affinity') else ()
        host = hosts.take(m.vm.memory_mib, avoid)
        if host is None and group.policy == 'soft-anti-affinity':
            host = hosts.take(m.vm.memory_mib)
        if host is None:
            why = (f'anti-affinity needs {len(members)} distinct target hosts with room'
                   if group.policy == 'anti-affinity' else 'no target host has room')
            raise exception.PlanError(f'group {group.name}: cannot place {m.name} '
                                      f'({m.vm.memory_mib:.0f} MiB): {why}')
        used.add(host)
        out[m.name] = host
    return out
