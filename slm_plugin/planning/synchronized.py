"""Synchronized live migration: every member of a group resumes at the destination together.

Bandwidth. A member with ``R`` MiB still to send in its first pass and dirty
rate ``D`` finishes pre-copy in about ``tau`` seconds when it gets
``R / tau + D`` (each round re-sends what the last one dirtied; summing the
geometric series gives ``R / (1 - D/b) = b tau``). Members that share a
resource (source NIC, destination NIC, WAN link) must fit its capacity ``C``,
so the earliest common finish is

    tau = max over resources of  sum R / (C - sum D)

and caps ``R / tau + D`` fill the bottleneck exactly: the group finishes at the
lower bound set by its busiest resource (plus what dirtying adds) and every
member finishes at the same instant. This is the SLM paper's "bandwidth in
proportion to predicted time", solved in closed form, so a control tick for
thousands of migrations costs microseconds per member. It is re-solved every
tick from observed progress (remaining bytes, measured dirty rate), which
corrects wrong estimates the way Pacer does.

Switchover. Members are held: one that converges early keeps iterating at a
low cap (it only re-sends what it dirties) instead of switching over. When all
are held, all are released in the same tick, so their switchover instants
differ only by their stop-and-copy times (milliseconds).

Members that cannot converge. If ``sum D`` reaches a resource's capacity,
the dirtiest member on it is taken out of the convergence set: it still gets
its share, and when the others are ready it is completed by the configured
stall policy (post-copy: resume at once and pull the rest; pause: accept the
downtime). The plan says so.

Several groups. Groups run one after another on shared resources, smallest
first (the shortest-first order minimises mean completion), each taking the
whole bottleneck; groups on disjoint resources run at once. Within a group
the per-host concurrency limit is respected; where a group has more members on
one host than the limit, full synchronization is impossible and the plan says
so.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from slm_plugin.execution import cloud as api
from slm_plugin.planning.base import Planner, resources
from slm_plugin.planning.placement import moving_groups
from slm_plugin.planning.plan import Decision, Plan, View
from slm_plugin.scenario.model import Member, Scenario

HOLD_MARGIN = 1.25  # a held member's cap over its dirty rate, so it keeps up
MIN_TAU_S = 0.5  # never plan to finish sooner than this: caps stay finite
MAX_LAMBDA = 0.6  # dirty rate over spare bandwidth beyond which converging takes too many rounds
TRICKLE_MIBPS = 1.0  # cap of a member that waits for its turn to converge


BULK = "bulk"  # first pass (disk, then memory round 0)
CONVERGE = "converge"  # later rounds, until the dirty set fits the downtime
HOLD = "hold"  # converged and kept iterating until the group is released


@dataclass(frozen=True, slots=True)
class Flow:
    """One member's migration as the bandwidth solver sees it (payload MiB, MiB/s)."""

    name: str
    stage: str
    remaining_mib: float  # first-pass payload still to send (bulk stage)
    dirty_mibps: float
    wire_ratio: float
    route: tuple


def solve(flows: Sequence[Flow], capacity: dict) -> tuple[float, dict[str, float], set[str]]:
    """Finish of the bulk stage ``tau``, a wire cap per flow, and flows that cannot converge.

    Bulk: caps in proportion to the first-pass bytes left, so that every first
    pass ends at ``tau``, the earliest the busiest resource allows.
    Converge: one member at a time gets what its resources have spare, the
    least dirty first, because a held member costs its dirty rate for as long
    as it waits and a member converging alone needs the fewest rounds. Others
    wait at a trickle (their dirty set saturates at the working set; nothing
    is gained by re-sending it slowly). Pure; O(flows x route length).
    """
    forced = _unconvergeable(flows, capacity)
    spare = dict(capacity)
    caps: dict[str, float] = {}

    def take(f: Flow, cap: float) -> None:
        caps[f.name] = cap
        for r in f.route:
            spare[r] -= cap

    bulk = [f for f in flows if f.stage == BULK]
    converging = [f for f in flows if f.stage == CONVERGE]
    for f in flows:
        if f.stage == HOLD:
            take(f, f.dirty_mibps * f.wire_ratio)
            caps[f.name] = max(HOLD_MARGIN * f.dirty_mibps * f.wire_ratio, TRICKLE_MIBPS)
    if bulk:
        for f in converging:
            take(f, TRICKLE_MIBPS)
        load: Counter = Counter()
        for f in bulk:
            for r in f.route:
                load[r] += f.remaining_mib * f.wire_ratio
        tau = max([MIN_TAU_S] + [load[r] / max(spare[r], 1e-6) for r in load])
        for f in bulk:
            # never 0: a pass that just ended still has pages to re-send
            caps[f.name] = max(f.remaining_mib * f.wire_ratio / tau, TRICKLE_MIBPS)
        return tau, caps, forced
    order = sorted(converging, key=lambda f: (f.name in forced, f.dirty_mibps, f.name))
    for f in order:
        take(f, max(min(spare[r] for r in f.route), TRICKLE_MIBPS))
    return MIN_TAU_S, caps, forced


def _unconvergeable(flows: Sequence[Flow], capacity: dict) -> set[str]:
    """Members that cannot converge once the less dirty ones before them are held.

    Members converge in order of dirty rate, and each held member keeps using
    its dirty rate until the release. A member whose dirty rate is close to
    what is left on one of its resources would never converge: it is completed
    by the stall policy at the release instead.
    """
    left = dict(capacity)
    forced: set[str] = set()
    for f in sorted(flows, key=lambda f: (f.dirty_mibps * f.wire_ratio, f.name)):
        d = f.dirty_mibps * f.wire_ratio
        if any(d >= MAX_LAMBDA * left[r] for r in f.route):
            forced.add(f.name)
            continue
        for r in f.route:
            left[r] -= d
    return forced


class SynchronizedPlanner(Planner):
    name = "synchronized"
    uses_hold = True
    postcopy_switchover = False

    def __init__(self, window: int | None = None):
        super().__init__(window=window)
        self._wave_cache = None

    def order(self, scenario: Scenario) -> list[list[Member]]:
        groups = sorted(
            moving_groups(scenario),
            key=lambda g: (sum(m.vm.memory_mib + m.vm.disk_mib for m in g.members), g.name),
        )
        return [list(g.members) for g in groups]

    def initial_caps(self, scenario, wave, dest, hosts):
        capacity, routes = resources(scenario, wave, dest, hosts)
        flows = [_flow(m, BULK, m.vm.memory_mib + m.vm.disk_mib, _dirty(m), r)
                 for m, r in zip(wave, routes, strict=True)]
        _, caps, _ = solve(flows, capacity)
        return caps

    def plan(self, scenario: Scenario) -> Plan:
        plan = super().plan(scenario)
        stall = _stall_mode(scenario)
        rows = list(plan.members)
        waves: dict[int, list[int]] = {}
        for i, m in enumerate(rows):
            waves.setdefault(m.wave, []).append(i)
        for idx in waves.values():
            together = max(rows[i].predicted_switchover_s for i in idx)
            for i in idx:
                completion = rows[i].completion
                if completion not in ("converged",):
                    completion = f"forced-{stall}"
                rows[i] = dataclasses.replace(
                    rows[i], predicted_switchover_s=together, completion=completion
                )
        return dataclasses.replace(plan, members=tuple(rows))

    def notes(self, scenario: Scenario, dest: dict[str, str]) -> list[str]:
        out = []
        limit = scenario.limits.max_concurrent_per_host
        for g in moving_groups(scenario):
            per_host = Counter(m.host for m in g.members)
            crowded = [h for h, n in per_host.items() if n > limit]
            if crowded:
                out.append(f"group {g.name}: {', '.join(sorted(crowded))} carry more members than "
                           f"the {limit} concurrent migrations allowed per host; those members "
                           "switch over in waves")
        return out

    # -- control -------------------------------------------------------------

    def open_waves(self, view: View) -> set[int]:
        """A group starts once every earlier group sharing a resource with it has resumed."""
        waves, conflicts = self._waves(view)
        resumed = {}
        for w, names in waves.items():
            resumed[w] = all(
                (p := view.progress.get(n)) is not None
                and (p.status in api.RESUMED or p.status in api.FINAL) for n in names)
        return {w for w in waves if all(resumed[e] for e in conflicts[w])}

    def _waves(self, view: View):
        """Members per wave, and the earlier waves each one shares a resource with.

        Depends on the plan only, so it is worked out once per plan.
        """
        if self._wave_cache is not None and self._wave_cache[0] is view.plan:
            return self._wave_cache[1]
        hosts = {h.name: h.site for h in view.scenario.hosts}
        waves: dict[int, list[str]] = {}
        used: dict[int, set] = {}
        for mp in view.plan.members:
            waves.setdefault(mp.wave, []).append(mp.member)
            res = used.setdefault(mp.wave, set())
            res.update({(mp.source, "out"), (mp.destination, "in")})
            a, b = hosts[mp.source], hosts[mp.destination]
            if a != b:
                res.add(tuple(sorted((a, b))))
        order = sorted(used)
        conflicts = {w: [e for e in order if e < w and used[e] & used[w]] for w in order}
        members = {m.name: m for m in view.scenario.members()}
        planned = [members[mp.member] for mp in view.plan.members]
        capacity, routes = resources(view.scenario, planned, view.plan.destinations)
        route = {m.name: r for m, r in zip(planned, routes, strict=True)}
        self._wave_cache = (view.plan, (waves, conflicts), (members, capacity, route))
        return waves, conflicts

    def _routes(self, view: View):
        """Members by name, resource capacities and each member's route, once per plan."""
        self._waves(view)
        return self._wave_cache[2]

    def decide(self, view: View) -> Decision:
        scenario = view.scenario
        members, capacity, route_of = self._routes(view)
        waves = self.open_waves(view)
        by_wave: dict[int, list] = {}
        for mp in view.plan.members:
            if mp.wave in waves:
                by_wave.setdefault(mp.wave, []).append(mp)
        start = self.admit(view, cap_of=lambda mp: mp.cap_mibps)
        starting = {s[0] for s in start}
        caps: dict[str, float | None] = {}
        hold: dict[str, bool] = {}
        force: list[tuple[str, str]] = []
        notes: list[str] = []
        mode = _stall_mode(scenario)
        for wave in by_wave.values():
            live = [mp for mp in wave
                    if mp.member in view.progress
                    and view.progress[mp.member].status in (api.MIGRATING, api.HELD)]
            if not live:
                continue
            flows = []
            for mp in live:
                p = view.progress[mp.member]
                m = members[mp.member]
                flows.append(_flow(m, _stage(p), p.disk_remaining_mib + p.memory_remaining_mib,
                                   _observed_dirty(m, p), route_of[mp.member]))
            _, wave_caps, forced = solve(flows, capacity)
            caps.update(wave_caps)
            unstarted = [mp for mp in wave
                         if mp.member not in view.progress and mp.member not in starting]
            if self.postcopy_switchover:
                forced = {mp.member for mp in live}  # all switch over by post-copy
            ready = all(
                view.progress[mp.member].status == api.HELD
                or (mp.member in forced and view.progress[mp.member].round >= 1)
                for mp in live
            )
            blocked = unstarted and not start and ready
            if ready and (not unstarted or blocked):
                if blocked:
                    notes.append(f"wave {wave[0].wave}: host limits keep "
                                 f"{len(unstarted)} member(s) waiting; releasing the others")
                for mp in live:
                    if self.postcopy_switchover:
                        force.append((mp.member, "postcopy"))  # held or not: resume now
                        continue
                    hold[mp.member] = False
                    if mp.member in forced and view.progress[mp.member].status != api.HELD:
                        force.append((mp.member, mode))
            else:
                for mp in live:
                    hold[mp.member] = True
        for name, _, _ in start:
            hold[name] = True
        for name, p in view.progress.items():
            if p.status == api.SWITCHED_OVER:
                caps[name] = None  # a post-copy tail: the guest waits for its pages
        return Decision(start=tuple(start), caps=caps, hold=hold, force=tuple(force),
                        notes=tuple(notes))


def _flow(m: Member, stage: str, remaining: float, dirty: float, route) -> Flow:
    return Flow(m.name, stage, remaining, dirty, m.vm.wire_ratio, tuple(route))


def _stage(p: api.Progress) -> str:
    if p.status == api.HELD:
        return HOLD
    return BULK if p.round < 1 else CONVERGE


def _dirty(m: Member) -> float:
    return m.vm.dirty_rate_mibps + (m.vm.disk_write_mibps if m.vm.disk_mib else 0.0)


def _observed_dirty(m: Member, p: api.Progress) -> float:
    """Measured dirty rate when someone measures it; the estimate otherwise."""
    dirty = m.vm.dirty_rate_mibps if p.dirty_rate_mibps is None else p.dirty_rate_mibps
    if p.round < 0:
        dirty += m.vm.disk_write_mibps
    return dirty


def _stall_mode(scenario: Scenario) -> str:
    on_stall = scenario.limits.policy.on_stall
    return on_stall if on_stall in ("pause", "postcopy") else "postcopy"


class SynchronizedPostcopyPlanner(SynchronizedPlanner):
    """Synchronized, switching the whole group over by post-copy as the bulk passes end.

    No convergence stage: when every first pass is done, every member resumes at
    the destination in the same tick and pulls its remaining dirty pages (at
    most its working set) afterwards. The group switches over at about the
    lower bound on makespan with near-zero downtime; the price is post-copy's:
    guests fault pages across the WAN during the tail, and a link failure in
    the tail loses them. For operators who already allow post-copy.
    """

    name = "synchronized-postcopy"
    postcopy_switchover = True
