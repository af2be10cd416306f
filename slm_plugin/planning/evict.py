"""Eviction first, in the spirit of Scatter-Gather: empty the source hosts soonest.

Every member starts at once (within host limits), the largest first. After one
full pre-copy pass a member switches to post-copy: it resumes at the
destination and the few pages dirtied since are pulled on demand, so each page
crosses the link about once. The source is free as early as the bytes allow;
the price is a larger split (members resume as their first passes end) and a
post-copy tail that, if the link fails, loses the guest.
"""

from __future__ import annotations

from slm_plugin.control import cloud as api
from slm_plugin.planning.base import Planner
from slm_plugin.planning.placement import moving_groups
from slm_plugin.planning.plan import Decision, View
from slm_plugin.scenario.model import Member, Scenario


class EvictPlanner(Planner):
    name = 'evict'
    needs_postcopy = True

    def order(self, scenario: Scenario) -> list[list[Member]]:
        members = [m for g in moving_groups(scenario) for m in g.members]
        members.sort(key=lambda m: (-(m.vm.memory_mib + m.vm.disk_mib), m.name))
        return [members]

    def decide(self, view: View) -> Decision:
        force = tuple(
            (name, 'postcopy') for name, p in view.progress.items()
            if p.status == api.MIGRATING and p.round >= 1
        )
        return Decision(start=tuple(self.admit(view)), force=force)
