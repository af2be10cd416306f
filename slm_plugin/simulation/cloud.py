"""A simulated multi-site cloud that runs many live migrations at once.

Event-driven: between events every migration's rate is constant, so each one
is advanced exactly by the pre-copy model. Events are the instants a
migration's bandwidth demand changes (a phase ends, it finishes) and the
calls of whoever drives it (start, caps, max downtime, force-complete, abort).
Rates are the max-min fair share of host NICs and inter-site links under each
migration's cap; a stop-and-copy is not capped (QEMU lifts the max speed when
it completes). As in QEMU, a migration switches over by itself as soon as a
round converges: nothing here holds one that the real knobs would not.
Migrations are advanced lazily, only when their rate changes or someone reads
them, so a control tick costs little when little changes.

Time is simulated: an hour of migrations runs in milliseconds. Given the same
seed and the same calls, the result is the same.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
import random
from dataclasses import dataclass

from slm_plugin import exception, model
from slm_plugin.control import cloud as api
from slm_plugin.model import precopy
from slm_plugin.model.fairshare import max_min_share
from slm_plugin.scenario.model import Member, Scenario

#: The max downtime the agent sets to hold a migration on libvirt (1 ms, the least
#: libvirt takes; 0 would not hold, see doc/source/admin/model.rst)
HOLD_DOWNTIME_S = 0.001


@dataclass(frozen=True, slots=True)
class MemberResult:
    member: str
    group: str
    source: str
    destination: str
    status: str
    start_s: float
    switchover_s: float | None
    finish_s: float | None
    downtime_s: float | None
    wire_mib: float
    crosses_wan: bool
    rounds: tuple[tuple[float, float], ...]  # (absolute start, payload MiB) per pre-copy round
    rate_history: tuple[tuple[float, float], ...]  # (instant, MiB/s) at every rate change
    completion: str


class _Migration:
    __slots__ = (
        'member', 'vm', 'dest', 'route', 'crosses_wan', 'cap', 'policy', 'state', 't', 'rate',
        'version', 'started_at', 'status', 'history',
    )

    def __init__(self, member: Member, vm: model.VM, dest: str, route: tuple, wan: bool,
                 cap: float | None, now: float, policy: model.CompletionPolicy):
        self.member = member
        self.vm = vm
        self.dest = dest
        self.route = route
        self.crosses_wan = wan
        self.cap = cap
        self.policy = policy
        self.state = model.start(vm)
        self.t = now
        self.rate = 0.0
        self.version = 0
        self.started_at = now
        self.status = api.MIGRATING
        self.history: list[tuple[float, float]] = []


class SimulatedCloud(api.Cloud):
    """Implements :class:`slm_plugin.control.cloud.Cloud` over a scenario."""

    def __init__(self, scenario: Scenario, seed: int = 0, dirty_noise: float = 0.0):
        """``dirty_noise`` perturbs each guest's true dirty rate (relative standard
        deviation) away from the scenario's estimate, so that planners must learn
        from observed progress rather than trust their first estimate."""
        self.scenario = scenario
        self.policy = scenario.limits.policy
        self._now = 0.0
        self._hosts = {h.name: h for h in scenario.hosts}
        self._members = {m.name: m for m in scenario.members()}
        rng = random.Random(seed)
        self._true_vm = {}
        for name in sorted(self._members):
            vm = self._members[name].vm
            factor = max(0.0, 1.0 + rng.gauss(0.0, dirty_noise)) if dirty_noise else 1.0
            self._true_vm[name] = dataclasses.replace(
                vm, dirty_rate_mibps=vm.dirty_rate_mibps * factor
            )
        self._capacity: dict[object, float] = {}
        for h in scenario.hosts:
            self._capacity[(h.name, 'out')] = h.nic_mibps
            self._capacity[(h.name, 'in')] = h.nic_mibps
        for link in scenario.links:
            self._capacity[link.name] = link.capacity_mibps
        self._site = {h.name: h.site for h in scenario.hosts}
        self._traffic = [(g.name, a, b, rate) for g in scenario.groups for a, b, rate in g.traffic]
        self._talkers = {name for _, a, b, _ in self._traffic for name in (a, b)}
        self.split_traffic_mib: dict[str, float] = {g.name: 0.0 for g in scenario.groups}
        self._split_rates: dict[str, float] = {}  # group -> MiB/s its split traffic gets now
        self._split_since = 0.0
        self._migs: dict[str, _Migration] = {}
        self._active: dict[str, _Migration] = {}
        self._events: list[tuple[float, int, str]] = []
        self._dirty = False
        self._seq = 0

    # -- Cloud interface ---------------------------------------------------

    def now(self) -> float:
        return self._now

    def start(self, member: str, destination: str, cap_mibps: float | None) -> None:
        m = self._member(member)
        if member in self._active:
            raise exception.CloudError(f'{member} is already migrating')
        before = self._migs.get(member)
        if before is not None and before.status in api.RESUMED:
            raise exception.CloudError(f'{member} already migrated to {before.dest}')
        if destination not in self._hosts:
            raise exception.CloudError(f'{member}: destination host {destination!r} does not exist')
        if destination == m.host:
            raise exception.CloudError(f'{member} is already on {destination}')
        src_site = self._hosts[m.host].site
        dst_site = self._hosts[destination].site
        route: tuple = ((m.host, 'out'), (destination, 'in'))
        wan = src_site != dst_site
        if wan:
            link = self.scenario.link_between(src_site, dst_site)
            if link is None:
                raise exception.CloudError(f'no link between {src_site} and {dst_site}')
            route += (link.name,)
        mig = _Migration(m, self._true_vm[member], destination, route, wan,
                         _cap(cap_mibps), self._now, self.policy)
        self._migs[member] = mig
        self._active[member] = mig
        self._dirty = True

    def set_cap(self, member: str, cap_mibps: float | None) -> None:
        mig = self._running(member)
        if mig.cap != _cap(cap_mibps):
            self._sync(mig)
            mig.cap = _cap(cap_mibps)
            self._touch(mig)

    def hold(self, member: str, held: bool) -> None:
        """What the agent's hold is on libvirt: the max downtime set to
        ``HOLD_DOWNTIME_S`` (and back to the policy's). It holds only while the
        guest dirties more than bandwidth x 1 ms between syncs."""
        mig = self._running(member)
        downtime = HOLD_DOWNTIME_S if held else self.policy.max_downtime_s
        if mig.policy.max_downtime_s == downtime:
            return
        self._sync(mig)
        mig.policy = dataclasses.replace(mig.policy, max_downtime_s=downtime)
        self._touch(mig)

    def force_complete(self, member: str, mode: str) -> None:
        """Force the migration to finish now. One already completing (in its
        stop-and-copy, or in post-copy) is left as it is: QEMU reads a switch to
        post-copy only between its iterations, and a pause changes nothing once
        the guest is paused; a planner's force that crosses QEMU's own switchover
        is no failure (it failed a simulated maintenance-site job before)."""
        mig = self._running(member)
        self._sync(mig)
        if mode in ('pause', 'postcopy') and mig.state.phase in (precopy.STOPCOPY,
                                                                  precopy.POSTCOPY):
            return
        try:
            mig.state = model.force_complete(mig.vm, mig.policy, mig.state, mode)
        except ValueError as exc:
            raise exception.CloudError(f'{member}: {exc}') from exc
        self._settle(mig)
        self._touch(mig)

    def abort(self, member: str) -> None:
        mig = self._running(member)
        self._sync(mig)
        if mig.state.switched_over:
            raise exception.CloudError(
                f'{member} already runs at the destination; too late to abort')
        mig.status = api.ABORTED
        del self._active[member]
        self._dirty = True

    def progress(self, members=None) -> dict[str, api.Progress]:
        for mig in self._active.values():
            self._sync(mig)
        return {name: self._progress(mig) for name, mig in self._migs.items()}

    def wait(self, seconds: float) -> None:
        self.run_until(self._now + seconds)

    # -- simulation ----------------------------------------------------------

    def run_until(self, t_end: float) -> None:
        while True:
            if self._dirty:
                self._reassign()
            while self._events and self._stale(self._events[0]):
                heapq.heappop(self._events)
            if not self._events or self._events[0][0] > t_end:
                self._now = max(self._now, t_end)
                return
            when, _, name = heapq.heappop(self._events)
            self._now = max(self._now, when)
            mig = self._migs[name]
            before = (mig.state.phase, mig.state.switched_over)
            self._sync(mig)
            after = (mig.state.phase, mig.state.switched_over)
            if after[0] != before[0] or after[1] != before[1]:
                self._touch(mig)  # its demand or its site changed: shares change
            elif mig.member.name in self._active:
                self._seq += 1
                mig.version = self._seq
                self._schedule(mig)  # just the end of a round: only its next boundary

    def moved(self) -> dict[str, str]:
        """Member -> host, for the members a migration has moved (switched over)."""
        return {name: mig.dest for name, mig in self._migs.items()
                if mig.state.switched_over and mig.status != api.ABORTED}

    def idle(self) -> bool:
        """True when nothing is migrating that could make progress by itself."""
        return not self._active

    def results(self) -> list[MemberResult]:
        self.progress()
        rates = dict(self._split_rates)
        self._account_split()
        self._split_rates = rates
        out = []
        for name, mig in self._migs.items():
            st = mig.state
            sw = None if st.switchover_at is None else mig.started_at + st.switchover_at
            fin = mig.started_at + st.elapsed if st.phase == precopy.DONE else None
            out.append(MemberResult(
                member=name, group=mig.member.group, source=mig.member.host,
                destination=mig.dest, status=mig.status, start_s=mig.started_at,
                switchover_s=sw, finish_s=fin,
                downtime_s=st.downtime_s if sw is not None else None,
                wire_mib=st.wire_mib, crosses_wan=mig.crosses_wan,
                rounds=tuple((mig.started_at + t, size) for t, size in st.rounds),
                rate_history=tuple(mig.history), completion=st.completion,
            ))
        return out

    # -- internals -------------------------------------------------------------

    def _member(self, name: str) -> Member:
        try:
            return self._members[name]
        except KeyError:
            raise exception.CloudError(f'unknown server {name!r}') from None

    def _running(self, name: str) -> _Migration:
        self._member(name)
        mig = self._active.get(name)
        if mig is None:
            raise exception.CloudError(f'{name} has no migration in progress')
        return mig

    def _stale(self, event) -> bool:
        _, version, name = event
        mig = self._active.get(name)
        return mig is None or mig.version != version

    def _sync(self, mig: _Migration) -> None:
        if mig.t < self._now and mig.status in (api.MIGRATING, api.SWITCHED_OVER):
            mig.state = model.advance(mig.vm, mig.policy, mig.state, mig.rate,
                                      self._now - mig.t)
            self._settle(mig)
        mig.t = self._now

    def _settle(self, mig: _Migration) -> None:
        phase = mig.state.phase
        if phase == precopy.DONE:
            mig.status = api.COMPLETED
            self._active.pop(mig.member.name, None)
        elif phase == precopy.POSTCOPY:
            mig.status = api.SWITCHED_OVER
        else:
            mig.status = api.MIGRATING

    def _schedule(self, mig: _Migration) -> None:
        """Queue the next instant its phase or round ends at its current rate.

        Rounds end often and cheaply (only this migration changes); when one
        ends in a phase that changes its demand, the shares are recomputed.
        """
        st = mig.state
        payload = mig.rate / mig.vm.wire_ratio
        if st.phase == precopy.DISK:
            net = payload - mig.vm.disk_write_mibps
            wait = st.to_send / net if net > 0 else None
        elif st.phase == precopy.MEMORY:
            wait = st.to_send / payload if payload > 0 else None
        elif st.phase in (precopy.STOPCOPY, precopy.POSTCOPY):
            end = model.advance(mig.vm, mig.policy, st, mig.rate, math.inf)
            wait = end.elapsed - st.elapsed if end.phase == precopy.DONE else None
            if st.switchover_at is not None and st.switchover_at > st.elapsed:
                wait = st.switchover_at - st.elapsed  # the guest moves before the tail ends
        else:
            wait = None
        if wait is not None:
            heapq.heappush(self._events,
                           (self._now + max(wait, 1e-9), mig.version, mig.member.name))

    def _touch(self, mig: _Migration) -> None:
        """Its state changed outside the event schedule: re-plan its next event."""
        mig.version = 0
        self._dirty = True

    def _demand(self, mig: _Migration) -> float:
        if mig.state.phase == precopy.STOPCOPY:
            return math.inf  # QEMU completes at full speed, whatever the max speed
        return mig.cap

    def _reassign(self) -> None:
        self._dirty = False
        migs = list(self._active.values())
        demands = [self._demand(m) for m in migs]
        routes = [m.route for m in migs]
        split = self._split_flows()
        demands += [rate for _, rate, _ in split]
        routes += [route for _, _, route in split]
        rates = max_min_share(demands, routes, self._capacity)
        self._account_split()
        for (group, _, _), rate in zip(split, rates[len(migs):], strict=True):
            self._split_rates[group] = self._split_rates.get(group, 0.0) + rate
        rates = rates[:len(migs)]
        for mig, rate in zip(migs, rates, strict=True):
            if rate == mig.rate and mig.version:
                continue
            self._sync(mig)
            if mig.status not in (api.MIGRATING, api.SWITCHED_OVER):
                continue
            mig.rate = rate
            mig.history.append((self._now, rate))
            self._seq += 1
            mig.version = self._seq
            self._schedule(mig)
        # migrations that finished while being synced above change the shares again
        if any(m.member.name not in self._active for m in migs):
            self._dirty = True

    def _where(self, member: str) -> str:
        mig = self._migs.get(member)
        if mig is not None and mig.state.switched_over and mig.status != api.ABORTED:
            return self._site[mig.dest]
        return self._site[self._members[member].host]

    def _split_flows(self) -> list[tuple[str, float, tuple]]:
        """Traffic between members of a group that now run in different sites.

        It crosses the WAN link and competes with the migrations: the cost of a
        split cluster that COMMA calls performance degradation.
        """
        flows = []
        for group, a, b, rate in self._traffic:
            if a in self._migs:
                self._sync(self._migs[a])
            if b in self._migs:
                self._sync(self._migs[b])
            sa, sb = self._where(a), self._where(b)
            if sa != sb:
                link = self.scenario.link_between(sa, sb)
                if link is not None:
                    flows.append((group, rate, (link.name,)))
        return flows

    def _account_split(self) -> None:
        """Add the split traffic carried since the last change of rates."""
        dt = self._now - self._split_since
        for group, rate in self._split_rates.items():
            self.split_traffic_mib[group] += rate * dt
        self._split_rates = {}
        self._split_since = self._now

    def _progress(self, mig: _Migration) -> api.Progress:
        st = mig.state
        sw = None if st.switchover_at is None else mig.started_at + st.switchover_at
        return api.Progress(
            member=mig.member.name,
            status=mig.status,
            disk_remaining_mib=st.to_send if st.phase == precopy.DISK else 0.0,
            memory_remaining_mib=(
                mig.vm.memory_mib if st.phase == precopy.DISK
                else st.to_send
            ),
            round=-1 if st.phase == precopy.DISK else st.round,
            wire_mib=st.wire_mib,
            throughput_mibps=mig.rate if mig.status == api.MIGRATING else 0.0,
            dirty_rate_mibps=mig.vm.dirty_rate_mibps * (1 - st.throttle),
            started_at=mig.started_at,
            round_started_at=mig.started_at + st.rounds[-1][0] if st.rounds else None,
            switchover_at=sw,
            downtime_s=st.downtime_s if sw is not None else None,
            finished_at=mig.started_at + st.elapsed if st.phase == precopy.DONE else None,
        )


def _cap(cap: float | None) -> float:
    if cap is None:
        return math.inf
    if cap < 0 or math.isnan(cap):
        raise exception.CloudError(f'a bandwidth cap must be a positive number of MiB/s, got {cap}')
    return float(cap)

