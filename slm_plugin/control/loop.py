"""The control loop: run a plan against a Cloud, one tick at a time.

Each tick reads progress, asks the planner for a decision (pure), and applies
it: starts, caps, holds, force-completes. The loop is the only place that acts,
so it is where the safety rules live: never start a member twice, only push a
cap that changed enough to matter, stop at a deadline, abort on request, and
apply the failure policy when the cloud refuses something or a migration
fails in it.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from slm_plugin import exception
from slm_plugin.control import cloud as api
from slm_plugin.control.links import LinkMonitor
from slm_plugin.planning.plan import Plan, View
from slm_plugin.scenario.model import Scenario

LOG = logging.getLogger(__name__)

CAP_CHANGE = 0.02  # relative change below which a cap is not pushed again
STEER_RETRY_S = 60.0  # how long a cap or hold that found nobody to carry it out is sent again
LOST_AFTER_TICKS = 5  # ticks a started migration may stay unreported before it counts as lost


@dataclass(frozen=True, slots=True)
class MemberOutcome:
    member: str
    source: str
    destination: str
    status: str  # a cloud status, or "not_started"
    location: str  # the host the guest runs on at the end
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str  # completed, failed, aborted
    finished_at: float
    ticks: int
    members: tuple[MemberOutcome, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Resume:
    """What a loop that carries on where another stopped must not do again.

    An engine taking a job over rebuilds it from the cloud's progress and the
    job's events: ``started`` members are not started again (they are steered:
    capped, held, released), ``forced`` ones are not forced twice, ``held``
    maps the members that may be held to None (neither answer: the first hold
    decision is sent again), and ``lost`` members (a start asked for that the
    cloud never began) count as failed, since starting them again could start
    them twice.
    """

    started: frozenset[str] = frozenset()
    forced: frozenset[str] = frozenset()
    held: Mapping[str, bool | None] = field(default_factory=dict)
    lost: Mapping[str, str] = field(default_factory=dict)


class ControlLoop:
    def __init__(self, cloud: api.Cloud, scenario: Scenario, planner, plan: Plan,
                 tick_s: float = 1.0, deadline_s: float = math.inf, on_failure: str = 'abort',
                 observer: Callable[[float, dict], None] | None = None,
                 resume: Resume | None = None, steer_retry_s: float = STEER_RETRY_S,
                 learn_links: bool = True,
                 share: Callable[[dict[str, float]], dict[str, float]] | None = None):
        if tick_s <= 0:
            raise ValueError(f'tick_s must be positive, got {tick_s}')
        if on_failure not in ('abort', 'continue'):
            raise ValueError(f'on_failure must be abort or continue, got {on_failure!r}')
        self.cloud = cloud
        self.scenario = scenario
        self.planner = planner
        self.plan = plan
        self.tick_s = tick_s
        self.deadline_s = deadline_s
        self.on_failure = on_failure
        self.observer = observer
        self.steer_retry_s = steer_retry_s
        self._abort = threading.Event()
        resume = resume or Resume()
        self._started: set[str] = set(resume.started)
        self._caps: dict[str, float | None] = {}
        self._held: dict[str, bool | None] = dict(resume.held)
        self._forced: set[str] = set(resume.forced)
        self._errors: dict[str, str] = dict(resume.lost)
        self._seen: set[str] = set()  # started members the cloud has reported
        self._unseen: dict[str, int] = {}  # started members not reported: ticks since
        self._unsteered: dict[str, float] = {}  # member -> when a transient cap/hold first failed
        self._stranded: set[str] = set()  # failed members this loop has aborted
        self._notes: list[str] = []
        self._looks: deque[float] = deque(maxlen=5)  # the instants of the last looks
        # the status monitor's link estimates (control.links), within what jobs of a
        # higher priority leave (``share``: this job's asks -> each link's capacity left
        # for it; control.shares); planners see them as the links' capacities
        # (learnt only where the caps are real: otherwise what a migration asks is unknown)
        self.links = LinkMonitor(scenario, plan, learn=learn_links and cloud.caps_enforced)
        self.share = share
        self._capacities = self.links.capacities()

    def request_abort(self) -> None:
        """Stop at the next tick: cancel what has not switched over yet."""
        self._abort.set()

    def run(self) -> Outcome:
        ticks = 0
        wanted = {m.member for m in self.plan.members}
        while True:
            progress = self.cloud.progress()
            self._failed_in_cloud(progress, wanted)
            self._lost_by_cloud(progress)
            if self.observer:
                self.observer(self.cloud.now(), progress)
            if all(progress.get(n) is not None and progress[n].status in api.FINAL
                   for n in wanted):
                return self._outcome('completed' if not self._errors else 'failed', ticks)
            if self._abort.is_set():
                self._cancel(progress)
                return self._outcome('aborted', ticks)
            if self.cloud.now() >= self.deadline_s:
                self._notes.append(f'deadline of {self.deadline_s:.0f} s reached')
                self._cancel(progress)
                return self._outcome('failed', ticks)
            if self._errors and self.on_failure == 'abort':
                self._cancel(progress)
                return self._outcome('failed', ticks)
            self._abort_stranded(progress)
            if not self._remaining(progress, wanted):
                return self._outcome('failed', ticks)
            now = self.cloud.now()
            self._looks.append(now)
            self._follow_links(progress)
            view = View(self.scenario, self.plan, now, self._planner_view(progress),
                        tick_s=self.period())
            self._apply(self.planner.decide(view), progress)
            self.cloud.wait(self.tick_s)
            ticks += 1

    def period(self) -> float:
        """The loop's period as it runs: the median of the last intervals between its
        looks (a loaded engine's ticks stretch past ``tick_s``: reading progress takes
        time; one long gap, a stall, does not move it); ``tick_s`` until two looks."""
        gaps = sorted(b - a for a, b in zip(self._looks, list(self._looks)[1:], strict=False))
        return gaps[len(gaps) // 2] if gaps else self.tick_s

    def _follow_links(self, progress) -> None:
        self.links.observe(self._looks[-1], self.period(), progress, self._caps)
        ceiling = self.share(self.links.asks(progress, self._caps)) if self.share else None
        capacities = self.links.capacities(ceiling)
        if capacities != self._capacities:
            self._capacities = capacities
            self.scenario = self.links.scenario(self.scenario, capacities)

    # -- acting ----------------------------------------------------------------------

    def _apply(self, decision, progress) -> None:
        for note in decision.notes:
            if note not in self._notes:
                self._notes.append(note)
        for member, dest, cap in decision.start:
            if member in self._started or member in progress:
                continue  # never twice: a decision built on stale progress must not restart it
            self._started.add(member)
            if self._act(member, self.cloud.start, member, dest, cap):
                self._caps[member] = cap
        for member, held in decision.hold.items():
            if self._held.get(member, False) != held and self._live(member):
                if self._steer(member, self.cloud.hold, member, held):
                    self._held[member] = held
        for member, cap in decision.caps.items():
            if self._live(member) and _changed(self._caps.get(member), cap):
                if self._steer(member, self.cloud.set_cap, member, cap):
                    self._caps[member] = cap
        for member, mode in decision.force:
            if member not in self._forced and self._live(member):
                self._forced.add(member)
                self._act(member, self.cloud.force_complete, member, mode)

    def _live(self, member: str) -> bool:
        return member in self._started and member not in self._errors

    def _act(self, member: str, action, *args) -> bool:
        try:
            action(*args)
            return True
        except exception.CloudError as exc:
            LOG.warning('%s: %s failed: %s', member, action.__name__, exc)
            self._errors[member] = str(exc)
            return False

    def _steer(self, member: str, action, *args) -> bool:
        """A cap or a hold. One that found nobody to carry it out (``transient``: the
        agent restarting, libvirtd down) is not applied, so the next tick sends it
        again; only after ``steer_retry_s`` of that does the member fail. The
        migration meanwhile keeps its last cap: libvirt keeps a job's max speed."""
        try:
            action(*args)
        except exception.CloudError as exc:
            since = self._unsteered.setdefault(member, self.cloud.now())
            waited = self.cloud.now() - since
            if not exc.transient or waited >= self.steer_retry_s:
                LOG.warning('%s: %s failed: %s', member, action.__name__, exc)
                self._errors[member] = (str(exc) if not exc.transient else
                                        f'{exc}; its migration could not be steered for '
                                        f'{waited:.0f} s')
            else:
                LOG.warning('%s: %s not carried out (%s); sent again next tick',
                            member, action.__name__, exc)
            return False
        if self._unsteered.pop(member, None) is not None:
            LOG.info('%s: steered again', member)
        return True

    def _abort_stranded(self, progress) -> None:
        """Under the 'continue' policy, a failed member whose migration still runs is
        aborted: nobody steers it any more, and a held one (capped to a trickle) would
        never end. The guest stays on its source host."""
        for name in self._errors:
            p = progress.get(name)
            if (name not in self._stranded and p is not None
                    and p.status in (api.MIGRATING, api.HELD)):
                self._stranded.add(name)
                LOG.warning('%s: failed, but its migration still runs; aborting it', name)
                try:
                    self.cloud.abort(name)
                except exception.CloudError as exc:
                    LOG.error('%s: cannot abort its migration: %s', name, exc)

    def _failed_in_cloud(self, progress, wanted) -> None:
        """A migration that failed in the cloud (not refused: it ran and failed) falls
        under the failure policy as a refused action does."""
        for name in wanted:
            p = progress.get(name)
            if p is not None and p.status == api.FAILED and name not in self._errors:
                LOG.warning('%s: its migration failed in the cloud', name)
                self._errors[name] = 'its migration failed in the cloud'

    def _lost_by_cloud(self, progress) -> None:
        """A started migration the cloud no longer reports (it was restarted, or its
        record is gone) fails: nothing would ever end it, and starting it again could
        start it twice. One the cloud never showed is given ``LOST_AFTER_TICKS`` first."""
        for name in self._started:
            if name in self._errors:
                continue
            if name in progress:
                self._seen.add(name)
                self._unseen.pop(name, None)
                continue
            missing = self._unseen[name] = self._unseen.get(name, 0) + 1
            if name in self._seen or missing > LOST_AFTER_TICKS:
                LOG.warning('%s: the cloud no longer reports its migration', name)
                self._errors[name] = ('the cloud no longer reports its migration (restarted, '
                                      'or its record is gone); not started again')

    def _cancel(self, progress) -> None:
        for name, p in progress.items():
            if p.status in (api.MIGRATING, api.HELD):
                self._act(name, self.cloud.abort, name)
        if self.observer:
            # its last look would otherwise show the members still migrating
            self.observer(self.cloud.now(), self.cloud.progress())

    def _planner_view(self, progress):
        """Progress as the planner sees it: a start the cloud refused counts as a failed
        migration, so the planner neither proposes it again nor keeps a slot free for it."""
        refused = {name: api.Progress(name, api.FAILED, 0.0, 0.0, 0, 0.0, 0.0, None,
                                      self.cloud.now())
                   for name in self._errors if name not in progress}
        return {**progress, **refused} if refused else progress

    def _remaining(self, progress, wanted) -> bool:
        """Whether anything can still happen (a member that failed to start never will)."""
        return any(n not in self._errors and (n not in progress or progress[n].status
                                              not in api.FINAL) for n in wanted)

    def _outcome(self, status: str, ticks: int) -> Outcome:
        progress = self.cloud.progress()
        rows = []
        for mp in self.plan.members:
            p = progress.get(mp.member)
            state = p.status if p else 'not_started'
            here = mp.destination if state in api.RESUMED else mp.source
            rows.append(MemberOutcome(mp.member, mp.source, mp.destination, state, here,
                                      self._errors.get(mp.member)))
        notes = list(self._notes)
        if self.links.learn:
            for link, est in sorted(self.links.estimate.items()):
                configured = self.links.configured[link]
                if est < 0.95 * configured:
                    notes.append(f'link {link} gave the migrations about {est:.0f} MiB/s, '
                                 f'not the {configured:.0f} MiB/s configured; the plan '
                                 'followed it')
        return Outcome(status, self.cloud.now(), ticks, tuple(rows), tuple(notes))


def _changed(old: float | None, new: float | None) -> bool:
    if old is None or new is None:
        return old is not new
    return abs(new - old) > CAP_CHANGE * max(abs(old), 1e-9)
