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

Hold and release, with the knobs QEMU has. QEMU switches a pre-copy
migration over by itself once what is dirty fits bandwidth x max downtime;
it has no state that keeps a converged migration iterating, and Nova
overwrites the max downtime at every step of its own. The only knob nothing
overwrites is the max speed. So a member is held *before* it converges: its
first pass stops ``reserve`` MiB short of the end (bulk caps aim at the
reserve, not at zero), and then it runs at ``FLOOR_MIBPS``, the least max
speed libvirt takes, so that its unsent reserve stays far above the
threshold (a guest that dirties pages only adds to it). When every member of
the group is held, the group is released in one tick: every cap is re-solved
so that every member's remaining reserve, and what its guest dirtied since
its pass began, is sent by one common instant (the same closed form as the
bulk pass), and re-solved every tick until each one switches over. What the
hold costs: the dirtied pages of the wait are sent once more, and the group
ends a few seconds of reserve later than parallel's first member would.

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
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from slm_plugin.control import cloud as api
from slm_plugin.planning.base import BUDGET_PLANNED, Planner, resources
from slm_plugin.planning.placement import moving_groups
from slm_plugin.planning.plan import Decision, Plan, View
from slm_plugin.scenario.model import Member, Scenario

MIN_TAU_S = 0.05  # never plan to finish sooner than this: caps stay finite
MAX_LAMBDA = 0.6  # dirty rate over spare bandwidth beyond which converging takes too many rounds
#: Dirty rate over what a member was seen to move at most beyond which it never converges
#: (each round shorter than the last by under 5 %: the common finish 20 passes away)
MAX_LAMBDA_OWN = 0.95
#: The least max speed libvirt takes (MiB/s; 0 means unlimited): a held member's cap
FLOOR_MIBPS = 1.0
#: First-pass MiB a member keeps unsent while it waits for its group; at the floor it
#: lasts RESERVE_MIB / FLOOR_MIBPS seconds of waiting (a quarter of a small guest)
RESERVE_MIB = 24.0
#: A member counts as held once its first pass is within this factor of its reserve
RESERVE_SLACK = 1.1
#: Throughput under this fraction of the cap: the member is limited by something else
LIMITED = 0.7
#: Throughput below this is not taken for a limit (a migration setting up, a stall)
LIMIT_SEEN_MIBPS = 4.0


BULK = 'bulk'  # first pass (disk, then memory round 0) down to the reserve
HOLD = 'hold'  # at the floor, the reserve unsent, until the group is released
RELEASE = 'release'  # released: every member's rest sent by one common instant


@dataclass(frozen=True, slots=True)
class Flow:
    """One member's migration as the bandwidth solver sees it (payload MiB, MiB/s)."""

    name: str
    stage: str
    remaining_mib: float  # first-pass payload still to send (bulk stage)
    dirty_mibps: float
    wire_ratio: float
    route: tuple
    #: the most wire MiB/s it was seen to move when its cap allowed more (a NIC or a
    #: host slower than the capacities say); inf until seen
    limit_mibps: float = math.inf


def solve(flows: Sequence[Flow], capacity: dict) -> tuple[float, dict[str, float], set[str]]:
    """Common finish ``tau``, a wire cap per flow, and flows that cannot converge.

    Bulk and release flows get caps in proportion to what they have left, so
    that all of them end at ``tau``, the earliest the busiest resource allows
    (their dirty rates included). Held flows run at the floor and are not
    part of the common finish. Pure; O(flows x route length).
    """
    forced = _unconvergeable(flows, capacity)
    spare = dict(capacity)
    caps: dict[str, float] = {}
    for f in flows:
        if f.stage == HOLD:
            caps[f.name] = FLOOR_MIBPS
            for r in f.route:
                spare[r] -= FLOOR_MIBPS
    moving = [f for f in flows if f.stage != HOLD]
    load: Counter = Counter()
    dirt: Counter = Counter()
    def resent(f: Flow) -> float:
        # a released member re-sends what its guest dirties until its last pass; a
        # first pass sends each page once (what it dirties waits for the release)
        if f.stage != RELEASE or f.name in forced:
            return 0.0
        return f.dirty_mibps * f.wire_ratio

    for f in moving:
        for r in f.route:
            load[r] += f.remaining_mib * f.wire_ratio
            dirt[r] += resent(f)
    tau = max([MIN_TAU_S] + [load[r] / max(spare[r] - dirt[r], 1e-6) for r in load]
              + [f.remaining_mib * f.wire_ratio / max(f.limit_mibps - resent(f), 1e-6)
                 for f in moving if math.isfinite(f.limit_mibps) and f.name not in forced])
    for f in moving:
        dirty = resent(f)
        # never below the floor: libvirt takes no less (0 would lift the cap)
        caps[f.name] = max(f.remaining_mib * f.wire_ratio / tau + dirty, FLOOR_MIBPS)
    return tau, caps, forced


def _unconvergeable(flows: Sequence[Flow], capacity: dict) -> set[str]:
    """Members that cannot converge once the less dirty ones before them are held.

    Members converge in order of dirty rate, and each held member keeps using
    its dirty rate until the release. A member whose dirty rate is close to
    what is left on one of its resources, or to what it was seen to move at
    most, would never converge: it is completed by the stall policy at the
    release instead (left in, a released member moving less than it dirties
    puts the common finish out of reach, and its whole group is capped at
    about its dirty rates).
    """
    left = dict(capacity)
    forced: set[str] = set()
    for f in sorted(flows, key=lambda f: (f.dirty_mibps * f.wire_ratio, f.name)):
        d = f.dirty_mibps * f.wire_ratio
        # its own path counts as one more resource: a member seen to move at most about
        # what its guest dirties never sends its rest, whatever the links leave it
        if d >= MAX_LAMBDA_OWN * f.limit_mibps or any(d >= MAX_LAMBDA * left[r] for r in f.route):
            forced.add(f.name)
            continue
        for r in f.route:
            left[r] -= d
    return forced


@dataclass
class _Run:
    """What the planner learns while one plan runs, kept across its ticks (a new plan, or
    an engine that takes the job over, starts afresh and holds and releases again from
    what it sees)."""

    plan: Plan
    released: set[int] = field(default_factory=set)  # waves released
    forced: set[str] = field(default_factory=set)  # members told to complete by post-copy
    slow: set[str] = field(default_factory=set)  # members whose own path is too slow
    limits: dict[str, float] = field(default_factory=dict)  # MiB/s seen at most, when limited
    peaks: dict[str, float] = field(default_factory=dict)  # MiB/s seen at most, at all
    caps_sent: dict[str, tuple] = field(default_factory=dict)  # the caps of the last two ticks
    #: wave -> (instant of its release, predicted seconds from it to every switchover)
    releases: dict[int, tuple[float, float]] = field(default_factory=dict)


class SynchronizedPlanner(Planner):
    name = 'synchronized'
    synchronizes = True
    postcopy_switchover = False

    def __init__(self, window: int | None = None):
        super().__init__(window=window)
        self._wave_cache = None
        self._run: _Run | None = None

    @property
    def releases(self) -> dict[int, tuple[float, float]]:
        """The model of each release of the current run: wave -> (its instant, predicted
        seconds from it to every switchover)."""
        return {} if self._run is None else self._run.releases

    def _run_of(self, view: View) -> _Run:
        if self._run is None or self._run.plan is not view.plan:
            self._run = _Run(view.plan)
        return self._run

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
                if completion not in ('converged',):
                    completion = f'forced-{stall}'
                rows[i] = dataclasses.replace(
                    rows[i], predicted_switchover_s=together, completion=completion
                )
        return dataclasses.replace(plan, members=tuple(rows))

    def notes(self, scenario: Scenario, dest: dict[str, str]) -> list[str]:
        out = []
        limit = scenario.limits.max_concurrent_per_host
        mode = _stall_mode(scenario)
        for g in moving_groups(scenario):
            capacity, routes = resources(scenario, g.members, dest)
            flows = [_flow(m, RELEASE, 0.0, _dirty(m), r)
                     for m, r in zip(g.members, routes, strict=True)]
            forced = sorted(_unconvergeable(flows, capacity))
            if forced and not self.postcopy_switchover:
                how = ('by post-copy when the group is released' if mode == 'postcopy' else
                       'on its own, uncapped, when it converges, not in step with the group '
                       '(pausing it would exceed the allowed downtime)')
                out.append(f"group {g.name}: {', '.join(forced)}: dirties memory too fast to "
                           f'converge together with the others on the bandwidth they share '
                           f'({sum(_dirty(m) for m in g.members):.0f} MiB/s dirtied in the '
                           f'group); completes {how}')
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

        Depends on the plan and the scenario only, so it is worked out once per plan, and
        again when the scenario changes (control.links: a link's learned capacity).
        """
        if self._wave_cache is not None and self._wave_cache[0] == (view.plan, view.scenario):
            return self._wave_cache[1]
        hosts = {h.name: h.site for h in view.scenario.hosts}
        waves: dict[int, list[str]] = {}
        used: dict[int, set] = {}
        for mp in view.plan.members:
            waves.setdefault(mp.wave, []).append(mp.member)
            res = used.setdefault(mp.wave, set())
            res.update({(mp.source, 'out'), (mp.destination, 'in')})
            a, b = hosts[mp.source], hosts[mp.destination]
            if a != b:
                res.add(tuple(sorted((a, b))))
        order = sorted(used)
        conflicts = {w: [e for e in order if e < w and used[e] & used[w]] for w in order}
        members = {m.name: m for m in view.scenario.members()}
        planned = [members[mp.member] for mp in view.plan.members]
        capacity, routes = resources(view.scenario, planned, view.plan.destinations)
        route = {m.name: r for m, r in zip(planned, routes, strict=True)}
        self._wave_cache = ((view.plan, view.scenario), (waves, conflicts),
                            (members, capacity, route))
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
        force: list[tuple[str, str]] = []
        notes: list[str] = []
        mode = _stall_mode(scenario)
        run = self._run_of(view)
        released = run.released
        for w, wave in by_wave.items():
            live = [mp for mp in wave
                    if mp.member in view.progress
                    and view.progress[mp.member].status == api.MIGRATING]
            if not live:
                continue
            unstarted = [mp for mp in wave
                         if mp.member not in view.progress and mp.member not in starting]
            stages = {mp.member: _stage(members[mp.member], view.progress[mp.member])
                      for mp in live}
            if w not in released:
                ready = all(st == HOLD for st in stages.values())
                blocked = unstarted and not start and ready
                if ready and (not unstarted or blocked):
                    if blocked:
                        notes.append(f'wave {w}: host limits keep {len(unstarted)} member(s) '
                                     'waiting; releasing the others')
                    released.add(w)
            flows = []
            for mp in live:
                p = view.progress[mp.member]
                m = members[mp.member]
                dirty = _observed_dirty(m, p)
                if w in released:
                    stage, left = RELEASE, _left_to_send(m, p, dirty, view.now)
                elif stages[mp.member] == HOLD:
                    stage, left = HOLD, 0.0
                else:
                    stage, left = BULK, max(0.0, _pass_left(m, p) - _reserve(m))
                flows.append(_flow(m, stage, left, dirty, route_of[mp.member],
                                   _limit(run, mp.member, p)))
            tau, wave_caps, forced = solve(flows, capacity)
            for f in flows:
                if (f.name in forced and f.name not in run.slow
                        and f.dirty_mibps * f.wire_ratio >= MAX_LAMBDA_OWN * f.limit_mibps):
                    run.slow.add(f.name)
                    notes.append(f'{f.name}: moved at most {f.limit_mibps:.0f} MiB/s while its '
                                 f'guest dirtied {f.dirty_mibps:.0f} MiB/s; it cannot converge '
                                 'in step with its group and completes on its own')
            if w not in released:
                downtime = scenario.limits.policy.max_downtime_s
                for f in flows:
                    if f.stage == BULK:
                        wave_caps[f.name] = _landing(wave_caps[f.name], f,
                                                     _reserve(members[f.name]), view.tick_s,
                                                     downtime)
            caps.update(wave_caps)
            if w in released and w not in run.releases:
                # the model of the release: every member switches over ``tau`` from now
                run.releases[w] = (view.now, tau)
            if mode == 'pause' and forced:
                # pausing one that cannot converge would cost far more than the
                # allowed downtime: it converges on its own, uncapped, as in parallel
                # (within what the job's bandwidth budget leaves, if it has one)
                budget = view.scenario.limits.max_bandwidth_mibps
                if budget is None:
                    caps.update(dict.fromkeys(forced))
                else:
                    rest = budget - sum(c for n, c in caps.items() if n not in forced and c)
                    caps.update(dict.fromkeys(forced, max(FLOOR_MIBPS, rest / len(forced))))
            if w in released:
                for mp in live:
                    if mp.member in run.forced:
                        continue
                    if self.postcopy_switchover:
                        force.append((mp.member, 'postcopy'))  # resume now, pull the rest
                    elif mp.member in forced and mode == 'postcopy':
                        force.append((mp.member, mode))
                    else:
                        continue
                    run.forced.add(mp.member)
        budget = scenario.limits.max_bandwidth_mibps
        if budget is not None:
            caps = _within(caps, budget * BUDGET_PLANNED)
        for name, p in view.progress.items():
            if p.status == api.SWITCHED_OVER:
                caps[name] = None  # a post-copy tail: the guest waits for its pages
        for name, cap in caps.items():
            run.caps_sent[name] = (*run.caps_sent.get(name, ())[-1:], cap)
        return Decision(start=tuple(start), caps=caps, force=tuple(force), notes=tuple(notes))


def _landing(cap: float, f: Flow, reserve: float, tick_s: float, downtime_s: float) -> float:
    """A bulk cap that lands the first pass in its reserve instead of through it.

    QEMU switches a migration over by itself once what is left to send fits its
    threshold, the rate times the max downtime, whatever the planner wants. A cap
    lasts until the next look, so what is left after it must stay above that
    threshold, twice over (zero pages leave at once, whatever the cap): the cap is at
    most the first pass left over (tick + 2 x max downtime). This binds only in the
    last look or two before the reserve. Seen on QEMU without it: 27.6 MiB left, 53
    MiB/s for a 0.26 s tick, 11.5 MiB left under a 16 MiB threshold, and the member
    switched over 1.5 s before its group."""
    if tick_s <= 0:
        return cap
    pass_left = (f.remaining_mib + reserve) * f.wire_ratio  # wire MiB, the reserve included
    return max(FLOOR_MIBPS, min(cap, pass_left / (tick_s + 2 * downtime_s)))


def _within(caps: dict[str, float | None], budget: float) -> dict[str, float | None]:
    """The caps, their parts above the floor scaled down so that together they fit the
    job's budget: holds and forced members sit at the floor (the least max speed libvirt
    takes), and enough of them would otherwise add up past it."""
    total = sum(c for c in caps.values() if c is not None)
    if total <= budget:
        return caps
    floors = sum(FLOOR_MIBPS for c in caps.values() if c is not None)
    above = total - floors
    k = max(0.0, budget - floors) / above if above > 0 else 0.0
    return {n: None if c is None else FLOOR_MIBPS + (c - FLOOR_MIBPS) * k
            for n, c in caps.items()}


def _limit(run: _Run, name: str, p: api.Progress) -> float:
    """What the member was seen to move at most while its cap allowed far more: the
    common finish is paced to it, so that a member slower than the capacities say does
    not leave the others to overshoot their reserves. Learnt per run, and never below
    the most it moved at all: one slow look (a loaded host) is no limit of its path."""
    run.peaks[name] = max(run.peaks.get(name, 0.0), p.throughput_mibps)
    # the caps of the last two ticks: a throughput is measured over the interval before
    # it is read, under the cap sent one tick earlier (or the one before)
    caps = [c for c in run.caps_sent.get(name, ()) if c is not None]
    if (len(caps) == 2 and LIMIT_SEEN_MIBPS < p.throughput_mibps < LIMITED * min(caps)
            and p.round >= 0):
        run.limits[name] = max(run.limits.get(name, 0.0), p.throughput_mibps)
    if name not in run.limits:
        return math.inf
    return max(run.limits[name], run.peaks[name])


def _pass_left(m: Member, p: api.Progress) -> float:
    """What is left of the first pass; all of it while the cloud has reported nothing."""
    if p.wire_mib <= 0 and p.disk_remaining_mib + p.memory_remaining_mib <= 0:
        return m.vm.memory_mib + m.vm.disk_mib
    return p.disk_remaining_mib + p.memory_remaining_mib


def _reserve(m: Member) -> float:
    """The first-pass MiB a member keeps unsent while its group is not ready."""
    return min(RESERVE_MIB, m.vm.memory_mib / 4)


def _stage(m: Member, p: api.Progress) -> str:
    """Bulk until the first pass is down to the reserve; held from then on (a pass
    that ended anyway, its reserve run out, waits in later rounds at the floor)."""
    if p.round >= 1:
        return HOLD
    # (nothing sent yet: a cloud that has not reported the pass reads 0 left of it)
    if (p.round == 0 and p.wire_mib > 0
            and p.memory_remaining_mib <= _reserve(m) * RESERVE_SLACK):
        return HOLD
    return BULK


def _left_to_send(m: Member, p: api.Progress, dirty: float, now: float) -> float:
    """What a released member still has to send before its last pass: the rest of the
    current pass and what its guest dirtied since the pass began (at most its working
    set); the dirtying to come is in the solver's dirty rate."""
    since = 0.0 if p.round_started_at is None else max(0.0, now - p.round_started_at)
    dirtied = min(m.vm.dirty_limit_mib, dirty * since)
    if p.round < 0:
        return p.disk_remaining_mib + m.vm.memory_mib
    return min(p.memory_remaining_mib + dirtied,
               max(m.vm.dirty_limit_mib, p.memory_remaining_mib))


def _flow(m: Member, stage: str, remaining: float, dirty: float, route,
          limit: float = math.inf) -> Flow:
    return Flow(m.name, stage, remaining, dirty, m.vm.wire_ratio, tuple(route), limit)


def _dirty(m: Member) -> float:
    return m.vm.dirty_rate_mibps + (m.vm.disk_write_mibps if m.vm.disk_mib else 0.0)


def _observed_dirty(m: Member, p: api.Progress) -> float:
    """Measured dirty rate when someone measures it; the estimate otherwise."""
    dirty = m.vm.dirty_rate_mibps if p.dirty_rate_mibps is None else p.dirty_rate_mibps
    if p.round < 0:
        dirty += m.vm.disk_write_mibps
    return dirty


def _stall_mode(scenario: Scenario) -> str:
    if not scenario.limits.allow_postcopy:
        return 'pause'  # which synchronized never does beyond the allowed downtime
    on_stall = scenario.limits.policy.on_stall
    return on_stall if on_stall in ('pause', 'postcopy') else 'postcopy'


class SynchronizedPostcopyPlanner(SynchronizedPlanner):
    """Synchronized, switching the whole group over by post-copy as the bulk passes end.

    No convergence stage: when every first pass is done, every member resumes at
    the destination in the same tick and pulls its remaining dirty pages (at
    most its working set) afterwards. The group switches over at about the
    lower bound on makespan with near-zero downtime; the price is post-copy's:
    guests fault pages across the WAN during the tail, and a link failure in
    the tail loses them. For operators who already allow post-copy.
    """

    name = 'synchronized-postcopy'
    postcopy_switchover = True
    needs_postcopy = True
