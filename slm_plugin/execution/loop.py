"""The control loop: run a plan against a Cloud, one tick at a time.

Each tick reads progress, asks the planner for a decision (pure), and applies
it: starts, caps, holds, force-completes. The loop is the only place that acts,
so it is where the safety rules live: never start a member twice, only push a
cap that changed enough to matter, stop at a deadline, abort on request, and
apply the failure policy when the cloud refuses something or a migration
fails in it.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

from oslo_log import log as logging

from slm_plugin.execution import cloud as api
from slm_plugin.planning.plan import Plan, View
from slm_plugin.scenario.model import Scenario

LOG = logging.getLogger(__name__)

CAP_CHANGE = 0.02  # relative change below which a cap is not pushed again


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


class ControlLoop:
    def __init__(self, cloud: api.Cloud, scenario: Scenario, planner, plan: Plan,
                 tick_s: float = 1.0, deadline_s: float = math.inf, on_failure: str = "abort",
                 observer: Callable[[float, dict], None] | None = None):
        if tick_s <= 0:
            raise ValueError(f"tick_s must be positive, got {tick_s}")
        if on_failure not in ("abort", "continue"):
            raise ValueError(f"on_failure must be abort or continue, got {on_failure!r}")
        self.cloud = cloud
        self.scenario = scenario
        self.planner = planner
        self.plan = plan
        self.tick_s = tick_s
        self.deadline_s = deadline_s
        self.on_failure = on_failure
        self.observer = observer
        self._abort = threading.Event()
        self._started: set[str] = set()
        self._caps: dict[str, float | None] = {}
        self._held: dict[str, bool] = {}
        self._forced: set[str] = set()
        self._errors: dict[str, str] = {}
        self._notes: list[str] = []

    def request_abort(self) -> None:
        """Stop at the next tick: cancel what has not switched over yet."""
        self._abort.set()

    def run(self) -> Outcome:
        ticks = 0
        wanted = {m.member for m in self.plan.members}
        while True:
            progress = self.cloud.progress()
            self._failed_in_cloud(progress, wanted)
            if self.observer:
                self.observer(self.cloud.now(), progress)
            if all(progress.get(n) is not None and progress[n].status in api.FINAL
                   for n in wanted):
                return self._outcome("completed" if not self._errors else "failed", ticks)
            if self._abort.is_set():
                self._cancel(progress)
                return self._outcome("aborted", ticks)
            if self.cloud.now() >= self.deadline_s:
                self._notes.append(f"deadline of {self.deadline_s:.0f} s reached")
                self._cancel(progress)
                return self._outcome("failed", ticks)
            if self._errors and self.on_failure == "abort":
                self._cancel(progress)
                return self._outcome("failed", ticks)
            if not self._remaining(progress, wanted):
                return self._outcome("failed", ticks)
            view = View(self.scenario, self.plan, self.cloud.now(), self._planner_view(progress))
            self._apply(self.planner.decide(view), progress)
            self.cloud.wait(self.tick_s)
            ticks += 1

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
                if self._act(member, self.cloud.hold, member, held):
                    self._held[member] = held
        for member, cap in decision.caps.items():
            if self._live(member) and _changed(self._caps.get(member), cap):
                if self._act(member, self.cloud.set_cap, member, cap):
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
        except api.CloudError as exc:
            LOG.warning("%s: %s failed: %s", member, action.__name__, exc)
            self._errors[member] = str(exc)
            return False

    def _failed_in_cloud(self, progress, wanted) -> None:
        """A migration that failed in the cloud (not refused: it ran and failed) falls
        under the failure policy as a refused action does."""
        for name in wanted:
            p = progress.get(name)
            if p is not None and p.status == api.FAILED and name not in self._errors:
                LOG.warning("%s: its migration failed in the cloud", name)
                self._errors[name] = "its migration failed in the cloud"

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
            state = p.status if p else "not_started"
            here = mp.destination if state in api.RESUMED else mp.source
            rows.append(MemberOutcome(mp.member, mp.source, mp.destination, state, here,
                                      self._errors.get(mp.member)))
        return Outcome(status, self.cloud.now(), ticks, tuple(rows), tuple(self._notes))


def _changed(old: float | None, new: float | None) -> bool:
    if old is None or new is None:
        return old is not new
    return abs(new - old) > CAP_CHANGE * max(abs(old), 1e-9)
