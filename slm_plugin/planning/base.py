"""What every planner shares: placement, waves, admission under limits, estimates.

A planner is pure: ``plan(scenario)`` returns a Plan and ``decide(view)``
returns a Decision for one control tick. Subclasses choose the order and
waves, the caps, and when members hold, switch over or are forced.
"""

from __future__ import annotations

import math
from collections import Counter

from slm_plugin import model
from slm_plugin.execution import cloud as api
from slm_plugin.planning.placement import moving_groups, place
from slm_plugin.planning.plan import Decision, MemberPlan, Plan, PlanError, View
from slm_plugin.scenario.model import Member, Scenario
from slm_plugin.simulation.fairshare import max_min_share
from slm_plugin.simulation.metrics import lower_bound_s

# a member that occupies a migration slot on its hosts and link
IN_FLIGHT = (api.MIGRATING, api.HELD, api.SWITCHED_OVER)


class Planner:
    name = "base"
    uses_hold = False

    def __init__(self, window: int | None = None):
        if window is not None and window < 1:
            raise PlanError(f"window must be at least 1, got {window}")
        self.window = window  # most migrations in flight at once, over the whole request

    # -- planning ------------------------------------------------------------------

    def order(self, scenario: Scenario) -> list[list[Member]]:
        """Waves of members, in the order they start."""
        return [[m for g in moving_groups(scenario) for m in g.members]]

    def initial_caps(self, scenario: Scenario, wave: list[Member], dest: dict[str, str],
                     hosts: dict) -> dict[str, float | None]:
        return dict.fromkeys((m.name for m in wave), None)

    def plan(self, scenario: Scenario) -> Plan:
        _check_limits(scenario)
        dest = place(scenario)
        waves = self.order(scenario)
        policy = scenario.limits.policy
        hosts = {h.name: h for h in scenario.hosts}
        rows, notes = [], []
        t = 0.0
        for w, wave in enumerate(waves):
            caps = self.initial_caps(scenario, wave, dest, hosts)
            rates = estimate_rates(scenario, wave, dest, caps, hosts)
            end = t
            for m in wave:
                p = model.predict(m.vm, policy, rates[m.name])
                rows.append(MemberPlan(
                    member=m.name, group=m.group, source=m.host, destination=dest[m.name],
                    wave=w, cap_mibps=caps[m.name], predicted_start_s=t,
                    predicted_switchover_s=t + p.switchover_s,
                    predicted_downtime_s=p.downtime_s, predicted_wire_mib=p.wire_mib,
                    completion=p.completion,
                ))
                if p.completion not in ("converged", "never") and not self.uses_hold:
                    notes.append(f"{m.name} does not converge at {rates[m.name]:.0f} MiB/s; "
                                 f"it will be completed by {p.completion}")
                end = max(end, t + p.finish_s)
            t = end
        notes.extend(self.notes(scenario, dest))
        return Plan(self.name, tuple(rows), lower_bound_s(scenario, dest), tuple(notes))

    def notes(self, scenario: Scenario, dest: dict[str, str]) -> list[str]:
        return []

    # -- control ---------------------------------------------------------------------

    def decide(self, view: View) -> Decision:
        return Decision(start=tuple(self.admit(view)))

    def open_waves(self, view: View) -> set[int]:
        """Waves whose members may start now: by default, all of them."""
        return {m.wave for m in view.plan.members}

    def admit(self, view: View, cap_of=lambda m: m.cap_mibps) -> list:
        """Members to start now, in plan order, within the host, link and window limits."""
        limits = view.scenario.limits
        hosts = {h.name: h for h in view.scenario.hosts}
        busy_host: Counter = Counter()
        busy_link: Counter = Counter()
        in_flight = 0
        plan_by_name = {m.member: m for m in view.plan.members}
        for name, p in view.progress.items():
            if p.status in IN_FLIGHT:
                mp = plan_by_name[name]
                busy_host[mp.source] += 1
                busy_link[_link(hosts, mp)] += 1
                in_flight += 1
        waves = self.open_waves(view)
        out = []
        for mp in view.plan.members:
            if mp.member in view.progress or mp.wave not in waves:
                continue
            if self.window is not None and in_flight >= self.window:
                break
            link = _link(hosts, mp)
            if busy_host[mp.source] >= limits.max_concurrent_per_host:
                continue
            if (limits.max_concurrent_per_link is not None and link is not None
                    and busy_link[link] >= limits.max_concurrent_per_link):
                continue
            busy_host[mp.source] += 1
            busy_link[link] += 1
            in_flight += 1
            out.append((mp.member, mp.destination, cap_of(mp)))
        return out


def estimate_rates(scenario: Scenario, wave: list[Member], dest: dict[str, str],
                   caps: dict[str, float | None], hosts: dict | None = None) -> dict[str, float]:
    """Fair-share rate each member of a wave gets when they all run at once."""
    capacity, routes = resources(scenario, wave, dest, hosts)
    demands = [math.inf if caps.get(m.name) is None else caps[m.name] for m in wave]
    rates = max_min_share(demands, routes, capacity)
    return {m.name: r for m, r in zip(wave, rates, strict=True)}


def resources(scenario: Scenario, members, dest: dict[str, str], hosts: dict | None = None):
    """Capacities and, per member, the resources its migration crosses.

    ``hosts`` (name -> Host) saves rebuilding the index when called in a loop.
    """
    hosts = hosts or {h.name: h for h in scenario.hosts}
    capacity: dict[object, float] = {}
    routes = []
    for m in members:
        src, dst = hosts[m.host], hosts[dest[m.name]]
        route = [(src.name, "out"), (dst.name, "in")]
        capacity[(src.name, "out")] = src.nic_mibps
        capacity[(dst.name, "in")] = dst.nic_mibps
        if src.site != dst.site:
            link = scenario.link_between(src.site, dst.site)
            if link is None:
                raise PlanError(f"no link between {src.site} and {dst.site} for {m.name}")
            route.append(link.name)
            capacity[link.name] = link.capacity_mibps
        routes.append(tuple(route))
    return capacity, routes


def _link(hosts, mp: MemberPlan):
    a, b = hosts[mp.source].site, hosts[mp.destination].site
    return None if a == b else tuple(sorted((a, b)))


def _check_limits(scenario: Scenario) -> None:
    lim = scenario.limits
    if lim.max_concurrent_per_host < 1:
        raise PlanError("limits.max_concurrent_per_host must be at least 1")
    if lim.max_concurrent_per_link is not None and lim.max_concurrent_per_link < 1:
        raise PlanError("limits.max_concurrent_per_link must be at least 1")
    for h in scenario.hosts:
        if h.nic_mibps <= 0:
            raise PlanError(f"host {h.name} has no migration bandwidth (nic_mibps {h.nic_mibps})")
    for link in scenario.links:
        if link.capacity_mibps <= 0:
            raise PlanError(f"link {link.name} has no capacity ({link.capacity_mibps} MiB/s)")
