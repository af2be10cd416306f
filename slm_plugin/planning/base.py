"""What every planner shares: placement, waves, admission under limits, estimates.

A planner is pure: ``plan(scenario)`` returns a Plan and ``decide(view)``
returns a Decision for one control tick. Subclasses choose the order and
waves, the caps, and when members hold, switch over or are forced.
"""

from __future__ import annotations

import math
from collections import Counter

from slm_plugin import exception, model
from slm_plugin.control import cloud as api
from slm_plugin.model.fairshare import max_min_share
from slm_plugin.planning.placement import moving_groups, place
from slm_plugin.planning.plan import Decision, MemberPlan, Plan, View
from slm_plugin.scenario.bounds import lower_bound_s
from slm_plugin.scenario.model import Member, Scenario

# a member that occupies a migration slot on its hosts and link
IN_FLIGHT = (api.MIGRATING, api.HELD, api.SWITCHED_OVER)


class Planner:
    name = 'base'
    synchronizes = False  # completes members together (its plan says how), not each alone
    needs_postcopy = False  # switches members over by post-copy whatever the stall policy

    def __init__(self, window: int | None = None):
        if window is not None and window < 1:
            raise exception.PlanError(f'window must be at least 1, got {window}')
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
        if self.needs_postcopy and not scenario.limits.allow_postcopy:
            raise exception.PlanError(
                f'{self.name} switches members over by post-copy, which this migration '
                'does not allow (options.allow_post_copy, [planning] allow_post_copy)')
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
                    wave=w, predicted_start_s=t,
                    # within a budget, uncapped means an equal share of it
                    cap_mibps=caps[m.name] if caps[m.name] is not None or
                    scenario.limits.max_bandwidth_mibps is None else rates[m.name],
                    predicted_switchover_s=t + p.switchover_s,
                    predicted_downtime_s=p.downtime_s, predicted_wire_mib=p.wire_mib,
                    completion=p.completion,
                ))
                if p.completion not in ('converged', 'never') and not self.synchronizes:
                    notes.append(f'{m.name} does not converge at {rates[m.name]:.0f} MiB/s; '
                                 f'it will be completed by {p.completion}')
                end = max(end, t + p.finish_s)
            t = end
        notes.extend(self.notes(scenario, dest))
        return Plan(self.name, tuple(rows), lower_bound_s(scenario, dest), tuple(notes))

    def notes(self, scenario: Scenario, dest: dict[str, str]) -> list[str]:
        return []

    # -- control ---------------------------------------------------------------------

    def decide(self, view: View) -> Decision:
        start = self.admit(view)
        budget = view.scenario.limits.max_bandwidth_mibps
        if budget is None:
            return Decision(start=tuple(start))
        # within the job's budget: an equal share for every migration in flight,
        # divided again as they start and end
        running = [n for n, p in view.progress.items() if p.status in (api.MIGRATING, api.HELD)]
        count = len(running) + len(start)
        if not count:
            return Decision()
        share = budget * BUDGET_PLANNED / count
        return Decision(start=tuple((m, d, share if c is None else min(c, share))
                                    for m, d, c in start),
                        caps=dict.fromkeys(running, share))

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


#: the resource every migration of a job with a bandwidth budget crosses
BUDGET = 'job bandwidth budget'
#: the share of the budget planned: the control loop leaves a cap that changed by less
#: than 2 % as it was (control.loop.CAP_CHANGE), so the caps in force may be that much
#: above the planned ones
BUDGET_PLANNED = 0.98


def resources(scenario: Scenario, members, dest: dict[str, str], hosts: dict | None = None):
    """Capacities and, per member, the resources its migration crosses.

    A job's bandwidth budget (``limits.max_bandwidth_mibps``) is one more resource,
    crossed by all of its migrations: whatever shares the planners compute on the
    NICs and links, their sum stays within it.
    ``hosts`` (name -> Host) saves rebuilding the index when called in a loop.
    """
    hosts = hosts or {h.name: h for h in scenario.hosts}
    capacity: dict[object, float] = {}
    budget = scenario.limits.max_bandwidth_mibps
    if budget is not None:
        capacity[BUDGET] = budget * BUDGET_PLANNED
    routes = []
    for m in members:
        src, dst = hosts[m.host], hosts[dest[m.name]]
        route = [(src.name, 'out'), (dst.name, 'in')] + ([BUDGET] if budget is not None else [])
        capacity[(src.name, 'out')] = src.nic_mibps
        capacity[(dst.name, 'in')] = dst.nic_mibps
        if src.site != dst.site:
            link = scenario.link_between(src.site, dst.site)
            if link is None:
                raise exception.PlanError(f'no link between {src.site} and {dst.site} for {m.name}')
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
        raise exception.PlanError('limits.max_concurrent_per_host must be at least 1')
    if lim.max_concurrent_per_link is not None and lim.max_concurrent_per_link < 1:
        raise exception.PlanError('limits.max_concurrent_per_link must be at least 1')
    for h in scenario.hosts:
        if h.nic_mibps <= 0:
            raise exception.PlanError(
                f'host {h.name} has no migration bandwidth (nic_mibps {h.nic_mibps})')
    if lim.max_bandwidth_mibps is not None and not lim.max_bandwidth_mibps > 0:
        raise exception.PlanError(
            f'the bandwidth budget must be positive, got {lim.max_bandwidth_mibps} MiB/s')
    for link in scenario.links:
        if link.capacity_mibps <= 0:
            raise exception.PlanError(
                f'link {link.name} has no capacity ({link.capacity_mibps} MiB/s)')
