"""Priorities between jobs: who gets a shared link first.

Three levels, as KubeVirt's migration queue has them: ``critical`` (a host
failing, an evacuation that cannot wait) above ``user`` (an operator's
request, the default) above ``maintenance`` (the maintenance hook's
evacuations, ``[maintenance] priority``).

A priority acts twice:

* **order**: pending jobs are claimed highest priority first, then oldest;
* **links**: a job plans on what the jobs of *higher* priority running on the
  same links leave of them. Each running job says, every tick, what its
  migrations ask of each link (the sum of their caps); a lower-priority job
  sees each link's capacity less those asks, so its planner re-solves its
  caps within what is left. The synchronized planner keeps its members in
  step at any capacity, so the job slows down, it is not split: that is the
  "without breaking a running job's synchronization". A job never sees less
  than ``FLOOR_SHARE`` of a link, so that it keeps moving (a migration left
  at a standstill only grows its dirty memory). Jobs of equal priority share
  a link as the cloud shares it (max-min fairly in the simulator).

Pure: the engine keeps the asks (engine.service.LinkAsks) and calls this.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

LEVELS = {'critical': 300, 'user': 200, 'maintenance': 100}
DEFAULT = 'user'
FLOOR_SHARE = 0.1


def level(name: str | None) -> int:
    """The numeric level of a priority's name (None: the default); ValueError if unknown."""
    name = name or DEFAULT
    try:
        return LEVELS[name]
    except KeyError:
        raise ValueError(f'unknown priority {name!r}; choose one of: '
                         f'{", ".join(LEVELS)}') from None


def name_of(value: int | None) -> str:
    for name, v in LEVELS.items():
        if v == value:
            return name
    return DEFAULT


def left_for(mine: int, capacity: Mapping[str, float],
             others: Iterable[tuple[int, Mapping[str, float]]]) -> dict[str, float]:
    """Each link's capacity less what higher-priority jobs ask of it, at least
    FLOOR_SHARE of it. ``others``: (priority, {link: MiB/s asked}) of the other jobs."""
    taken = dict.fromkeys(capacity, 0.0)
    for priority, asks in others:
        if priority <= mine:
            continue
        for link, mibps in asks.items():
            if link in taken:
                taken[link] += mibps
    return {link: max(FLOOR_SHARE * c, c - taken[link]) for link, c in capacity.items()}
