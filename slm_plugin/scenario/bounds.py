"""Bounds a scenario sets on any plan, whatever the strategy."""

from __future__ import annotations

from slm_plugin.scenario.model import Scenario


def lower_bound_s(scenario: Scenario, destinations: dict[str, str] | None = None) -> float:
    """Least possible makespan: the busiest resource's mandatory bytes over its capacity.

    Every member's memory (and block-migrated disk) must leave its source NIC
    once and, when it changes site, cross the link once. With known
    destinations their NICs count too. Dirtying only adds to this.
    """
    load: dict[object, float] = {}
    cap: dict[object, float] = {}
    hosts = {h.name: h for h in scenario.hosts}
    moving = set(scenario.request.groups) or {g.name for g in scenario.groups}
    for m in scenario.members():
        if m.group not in moving:
            continue
        size = (m.vm.memory_mib + m.vm.disk_mib) * m.vm.wire_ratio
        src = hosts[m.host]
        keys: list[tuple[object, float]] = [((src.name, 'out'), src.nic_mibps)]
        dest = (destinations or {}).get(m.name)
        dst_site = hosts[dest].site if dest else scenario.request.to_site
        if dest:
            keys.append(((dest, 'in'), hosts[dest].nic_mibps))
        if dst_site and dst_site != src.site:
            link = scenario.link_between(src.site, dst_site)
            if link is not None:
                keys.append((link.name, link.capacity_mibps))
        for key, capacity in keys:
            load[key] = load.get(key, 0.0) + size
            cap[key] = capacity
    return max((load[k] / cap[k] for k in load), default=0.0)
