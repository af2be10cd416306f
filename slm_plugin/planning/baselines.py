"""What operators have today, as planners: no caps, no holds, no coordination.

* ``parallel``: every member at once, sharing links fairly (Nova with a high
  ``max_concurrent_live_migrations``; the per-host limit still queues).
* ``sequential``: one migration at a time over the whole request, in the
  order the group lists its members (a script calling ``nova live-migration``
  and waiting for each).
* ``bounded``: Watcher's zone_migration style: the largest first, at most
  ``window`` (default 6) in flight, per-host limits respected.
"""

from __future__ import annotations

from slm_plugin.planning.base import Planner
from slm_plugin.planning.placement import moving_groups
from slm_plugin.scenario.model import Member, Scenario


class ParallelPlanner(Planner):
    name = 'parallel'


class SequentialPlanner(Planner):
    name = 'sequential'

    def __init__(self):
        super().__init__(window=1)

    def order(self, scenario: Scenario) -> list[list[Member]]:
        return [[m] for g in moving_groups(scenario) for m in g.members]


class BoundedParallelPlanner(Planner):
    name = 'bounded'

    def __init__(self, window: int = 6):
        super().__init__(window=window)

    def order(self, scenario: Scenario) -> list[list[Member]]:
        members = [m for g in moving_groups(scenario) for m in g.members]
        members.sort(key=lambda m: (-(m.vm.memory_mib + m.vm.disk_mib), m.name))
        return [members]
