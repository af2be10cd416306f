"""Max-min fair sharing of capacity among flows with individual caps.

A flow crosses a set of resources (source NIC, destination NIC, WAN link) and
may have a cap of its own (the migration's max speed). Progressive filling:
raise every unfrozen flow's rate together; a flow freezes when it reaches its
cap or when a resource it crosses fills up. This is how TCP flows on shared
links behave to a first approximation, and what a migration with a libvirt
max speed gets.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence


def max_min_share(
    demands: Sequence[float],
    routes: Sequence[Sequence[Hashable]],
    capacities: Mapping[Hashable, float],
) -> list[float]:
    """Rates for flows with the given demands (caps; inf for none) and routes."""
    n = len(demands)
    load: dict[Hashable, float] = dict.fromkeys(capacities, 0.0)
    for i, route in enumerate(routes):
        for r in route:
            load[r] += demands[i]
    if all(load[r] <= capacities[r] for r in load):
        return [max(d, 0.0) for d in demands]  # nothing is contended: every flow gets its cap
    rates = [0.0] * n
    remaining = dict(capacities)
    users: dict[Hashable, list[int]] = {r: [] for r in remaining}
    for i, route in enumerate(routes):
        for r in route:
            users[r].append(i)
    by_demand = sorted((i for i in range(n) if demands[i] > 0), key=demands.__getitem__)
    active = set(by_demand)
    count = {r: sum(1 for i in users[r] if i in active) for r in users}
    nxt = 0  # index into by_demand of the smallest demand not yet frozen
    level = 0.0
    while active:
        while nxt < len(by_demand) and by_demand[nxt] not in active:
            nxt += 1
        step = demands[by_demand[nxt]] - level if nxt < len(by_demand) else math.inf
        for r, k in count.items():
            if k:
                step = min(step, remaining[r] / k)
        if math.isinf(step):
            raise ValueError('a flow with no cap crosses no resource: its rate is unbounded')
        step = max(step, 0.0)
        level += step
        frozen = []
        for r, k in count.items():
            if k:
                remaining[r] -= step * k
                if remaining[r] <= 1e-9 * max(1.0, capacities[r]):
                    frozen.extend(i for i in users[r] if i in active)
        while nxt < len(by_demand) and demands[by_demand[nxt]] - level <= 1e-9 * max(1.0, level):
            frozen.append(by_demand[nxt])
            nxt += 1
        for i in frozen:
            if i in active:
                rates[i] = level
                active.discard(i)
                for r in routes[i]:
                    count[r] -= 1
    return rates
