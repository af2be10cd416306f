"""Pre-copy live migration of one VM as a fluid model.

Units are MiB, MiB/s and seconds throughout. The same state machine serves the
predictor (run to completion at a constant bandwidth), the inverse (bandwidth
needed for a deadline) and the simulator (advance by a time step at whatever
bandwidth the shared links grant), so there is exactly one definition of how a
migration behaves.

Dynamics, as QEMU does it:

* block migration copies the disk first; guest disk writes during the copy are
  sent again, so the disk phase makes net progress at ``rate - disk_writes``;
* memory round 0 sends all of memory; every later round sends the pages dirtied
  during the previous round. Dirtied memory grows at the dirty rate but
  saturates at the writable working set (a guest rewriting the same 200 MiB
  never has more than 200 MiB dirty);
* a round whose dirty set fits into ``bandwidth x max_downtime`` is sent with
  the guest paused (stop-and-copy) and the guest resumes at the destination;
* after ``max_rounds`` without converging, the stall policy applies: pause
  (stop-and-copy of whatever is dirty, long downtime), post-copy (resume at the
  destination at once, pull the remaining pages afterwards) or none (iterate
  forever, as an unsteered migration does until Nova's timeout);
* auto-converge throttles the guest CPU when two rounds in a row dirty more
  than half of what they sent, lowering the dirty rate in steps;
* there is no hold: QEMU switches over as soon as a round converges, whatever
  anyone wants. What keeps a migration from converging is only what the real
  knobs do: a max speed at or below the dirty rate (the dirty set stays at the
  working set), or a max speed so low that the first pass is still under way;
* the stop-and-copy runs at the link's rate, not at the max speed (QEMU lifts
  its rate limit when it completes), so its downtime is what is dirty over the
  free bandwidth.

With an unbounded working set, dirty rate D and payload bandwidth B, round i
sends M (D/B)^i, which the tests check against the closed form.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

DISK = 'disk'
MEMORY = 'memory'
STOPCOPY = 'stopcopy'
POSTCOPY = 'postcopy'
DONE = 'done'

STALL_POLICIES = ('pause', 'postcopy', 'none')
_EPS = 1e-12
_DONE_EPS = 1e-9  # MiB left that counts as nothing (float rounding of event times)


@dataclass(frozen=True, slots=True)
class VM:
    """What the model needs to know about a guest."""

    memory_mib: float
    dirty_rate_mibps: float = 0.0
    wws_mib: float | None = None  # writable working set; None means all of memory
    disk_mib: float = 0.0  # copied by block migration; 0 with shared storage
    disk_write_mibps: float = 0.0
    wire_ratio: float = 1.0  # wire bytes per guest byte (compression, dedup < 1)

    def __post_init__(self):
        _positive('memory_mib', self.memory_mib)
        for name in ('dirty_rate_mibps', 'disk_mib', 'disk_write_mibps'):
            _non_negative(name, getattr(self, name))
        if self.wws_mib is not None:
            _positive('wws_mib', self.wws_mib)
        if not 0 < self.wire_ratio <= 1:
            raise ValueError(f'wire_ratio must be in (0, 1], got {self.wire_ratio}')

    @property
    def dirty_limit_mib(self) -> float:
        """The most memory that can be dirty at once."""
        if self.wws_mib is None:
            return self.memory_mib
        return min(self.wws_mib, self.memory_mib)


@dataclass(frozen=True, slots=True)
class CompletionPolicy:
    """How a migration finishes: downtime budget, round cap and what to do on a stall."""

    max_downtime_s: float = 0.3
    max_rounds: int = 30
    on_stall: str = 'pause'
    auto_converge: bool = False
    throttle_initial: float = 0.2
    throttle_step: float = 0.1
    throttle_max: float = 0.99
    switchover_s: float = 0.0  # fixed cost of moving device state at switchover

    def __post_init__(self):
        _non_negative('max_downtime_s', self.max_downtime_s)
        if self.max_rounds < 1:
            raise ValueError(f'max_rounds must be at least 1, got {self.max_rounds}')
        if self.on_stall not in STALL_POLICIES:
            raise ValueError(
                f"on_stall must be one of {', '.join(STALL_POLICIES)}, got {self.on_stall!r}"
            )


@dataclass(frozen=True, slots=True)
class MigrationState:
    """Where a migration is. ``elapsed`` counts from its start."""

    phase: str
    round: int = 0
    to_send: float = 0.0  # payload MiB left in this disk phase, round, stop-copy or post-copy
    round_size: float = 0.0
    dirty: float = 0.0  # MiB dirtied since the current round began
    elapsed: float = 0.0
    wire_mib: float = 0.0
    throttle: float = 0.0
    high_dirty_rounds: int = 0
    paused_at: float | None = None
    switchover_at: float | None = None
    downtime_s: float = 0.0
    completion: str = ''
    rounds: tuple[tuple[float, float], ...] = ()  # (start elapsed, payload MiB) per round

    @property
    def switched_over(self) -> bool:
        return self.switchover_at is not None

    @property
    def finished(self) -> bool:
        return self.phase == DONE

    @property
    def remaining_mib(self) -> float:
        """Payload still to send if the migration converged now (an estimate for progress)."""
        return self.to_send + (self.dirty if self.phase == MEMORY else 0.0)


@dataclass(frozen=True, slots=True)
class Prediction:
    """The outcome of a migration run at one constant bandwidth."""

    converged: bool
    switchover_s: float  # from the state's start; inf when it never switches over
    finish_s: float  # includes a post-copy tail
    downtime_s: float
    wire_mib: float
    rounds: tuple[float, ...]
    completion: str


def start(vm: VM) -> MigrationState:
    """A migration that has just begun."""
    if vm.disk_mib > 0:
        return MigrationState(phase=DISK, to_send=vm.disk_mib)
    return MigrationState(
        phase=MEMORY, to_send=vm.memory_mib, round_size=vm.memory_mib,
        rounds=((0.0, vm.memory_mib),),
    )


def advance(
    vm: VM, policy: CompletionPolicy, state: MigrationState, rate_mibps: float, dt: float,
    stopcopy_rate_mibps: float | None = None,
) -> MigrationState:
    """The state ``dt`` seconds later at a constant wire rate.

    ``stopcopy_rate_mibps`` is the rate of a stop-and-copy that begins on the way
    (the link's free share: QEMU lifts the max speed when it completes); the
    pre-copy rate when not given. ``dt`` may be ``math.inf``: the migration then
    runs until it finishes, or, when it cannot (no bandwidth, a stall with
    policy none), until it is clear that it will not.
    """
    s = _Mutable(state)
    payload = rate_mibps / vm.wire_ratio
    left = dt
    while left > _EPS and s.phase != DONE:
        if s.phase == STOPCOPY and stopcopy_rate_mibps is not None:
            rate_mibps = stopcopy_rate_mibps
            payload = rate_mibps / vm.wire_ratio
        if s.phase == DISK:
            net = payload - vm.disk_write_mibps
            if net <= 0:
                if math.isinf(left):
                    break
                s.send(rate_mibps, left)
                left = 0
                continue
            step = min(s.to_send / net, left)
            s.send(rate_mibps, step)
            s.to_send -= net * step
            left -= step
            if s.to_send <= _DONE_EPS:
                s.new_round(vm.memory_mib, first=True)
        elif s.phase == MEMORY:
            if payload <= 0:
                if math.isinf(left):
                    break
                s.dirty = min(vm.dirty_limit_mib, s.dirty + _dirty_rate(vm, s) * left)
                s.send(0.0, left)
                left = 0
                continue
            step = min(s.to_send / payload, left)
            s.send(rate_mibps, step)
            s.to_send -= payload * step
            s.dirty = min(vm.dirty_limit_mib, s.dirty + _dirty_rate(vm, s) * step)
            left -= step
            if s.to_send <= _DONE_EPS:
                _end_round(vm, policy, s, payload)
                if math.isinf(left) and s.phase == MEMORY and s.round > 4 * policy.max_rounds:
                    break  # iterates forever: report it unfinished
        else:  # STOPCOPY or POSTCOPY: drain what is left
            if s.phase == POSTCOPY and s.elapsed < s.switchover_at:
                # device state is still moving: pages are pulled once the guest runs there
                wait = s.switchover_at - s.elapsed
                if wait <= left:
                    s.elapsed = s.switchover_at
                    left -= wait
                else:
                    s.elapsed += left
                    left = 0
                continue
            if payload <= 0:
                if math.isinf(left):
                    break
                s.send(0.0, left)
                left = 0
                continue
            step = min(s.to_send / payload, left)
            s.send(rate_mibps, step)
            s.to_send -= payload * step
            left -= step
            if s.to_send <= _DONE_EPS:
                s.to_send = 0.0
                if s.phase == STOPCOPY:
                    s.switchover_at = s.elapsed + policy.switchover_s
                    s.downtime_s = s.switchover_at - s.paused_at
                    s.elapsed = s.switchover_at
                s.phase = DONE
    return s.freeze()


def force_complete(
    vm: VM, policy: CompletionPolicy, state: MigrationState, mode: str = 'pause',
) -> MigrationState:
    """Finish now: pause and copy what is dirty, or resume at the destination (post-copy)."""
    if mode not in ('pause', 'postcopy'):
        raise ValueError(f'force-complete mode must be pause or postcopy, got {mode!r}')
    if state.phase != MEMORY:
        raise ValueError(f'cannot force-complete a migration in phase {state.phase}')
    s = _Mutable(state)
    # after round 0 both what is left of the round and what it dirtied lie in the
    # working set, so together they never exceed it
    limit = vm.memory_mib if s.round == 0 else vm.dirty_limit_mib
    pending = min(limit, s.to_send + s.dirty)
    if mode == 'pause':
        _begin_stopcopy(s, pending, 'forced-pause')
    else:
        _begin_postcopy(policy, s, pending, 'forced-postcopy')
    return s.freeze()


def predict(
    vm: VM, policy: CompletionPolicy, rate_mibps: float, state: MigrationState | None = None,
) -> Prediction:
    """Run a migration (from its start, or from ``state``) to the end at a constant rate."""
    begin = state or start(vm)
    end = advance(vm, policy, begin, rate_mibps, math.inf)
    base = begin.elapsed
    rounds = tuple(size for _, size in end.rounds)
    if end.switchover_at is None:
        return Prediction(False, math.inf, math.inf, math.inf, math.inf, rounds, 'never')
    finish = end.elapsed - base if end.phase == DONE else math.inf
    return Prediction(
        converged=end.completion == 'converged',
        switchover_s=end.switchover_at - base,
        finish_s=finish,
        downtime_s=end.downtime_s,
        wire_mib=end.wire_mib - begin.wire_mib,
        rounds=rounds,
        completion=end.completion,
    )


def bandwidth_for_deadline(
    vm: VM, policy: CompletionPolicy, deadline_s: float, state: MigrationState | None = None,
    rel_tol: float = 1e-4,
) -> float:
    """The least wire rate at which the guest resumes at the destination by ``deadline_s``.

    Bisection on the rate. It finds the least rate when switchover time falls
    monotonically with bandwidth, as it does with the pause and none stall
    policies. With post-copy or auto-converge a little less bandwidth can
    finish sooner (a stall resumes the guest at once; more throttling means
    fewer rounds); there the answer meets the deadline but may not be the
    least rate that does. Returns inf for a deadline of zero or less.
    """
    if deadline_s <= 0:
        return math.inf
    begin = state or start(vm)
    floor = (begin.remaining_mib + (vm.memory_mib if begin.phase == DISK else 0.0))
    hi = max(floor * vm.wire_ratio / deadline_s, 1e-6)
    while predict(vm, policy, hi, begin).switchover_s > deadline_s:
        hi *= 2
        if hi > 1e12:
            return math.inf
    lo = hi / 2 if hi > 1e-6 else 0.0
    while predict(vm, policy, lo, begin).switchover_s <= deadline_s and lo > 1e-9:
        hi, lo = lo, lo / 2
    while hi - lo > rel_tol * hi:
        mid = (lo + hi) / 2
        if predict(vm, policy, mid, begin).switchover_s <= deadline_s:
            hi = mid
        else:
            lo = mid
    return hi


def _dirty_rate(vm: VM, s: _Mutable) -> float:
    return vm.dirty_rate_mibps * (1.0 - s.throttle)


def _end_round(vm: VM, policy: CompletionPolicy, s: _Mutable, payload: float):
    dirty = s.dirty
    if policy.auto_converge and s.round > 0:
        if dirty > 0.5 * s.round_size:
            s.high_dirty_rounds += 1
            if s.high_dirty_rounds >= 2:
                s.throttle = (
                    policy.throttle_initial if s.throttle == 0
                    else min(policy.throttle_max, s.throttle + policy.throttle_step)
                )
                s.high_dirty_rounds = 0
        else:
            s.high_dirty_rounds = 0
    if dirty <= payload * policy.max_downtime_s + _EPS:
        # QEMU: threshold = measured bandwidth (the max speed) x downtime limit
        _begin_stopcopy(s, dirty, 'converged')
        return
    if s.round + 1 >= policy.max_rounds and policy.on_stall != 'none':
        if policy.on_stall == 'pause':
            _begin_stopcopy(s, dirty, 'pause')
        else:
            _begin_postcopy(policy, s, dirty, 'postcopy')
        return
    s.new_round(dirty)


def _begin_stopcopy(s: _Mutable, pending: float, completion: str):
    s.phase = STOPCOPY
    s.to_send = pending
    s.dirty = 0.0
    s.paused_at = s.elapsed
    s.completion = completion


def _begin_postcopy(policy: CompletionPolicy, s: _Mutable, pending: float, completion: str):
    s.phase = POSTCOPY
    s.to_send = pending
    s.dirty = 0.0
    s.switchover_at = s.elapsed + policy.switchover_s  # advance waits for it before pulling
    s.downtime_s = policy.switchover_s
    s.completion = completion
    if pending <= _EPS:
        s.phase = DONE
        s.elapsed = s.switchover_at


class _Mutable:
    """Scratch copy of a MigrationState for one advance; frozen again on return."""

    __slots__ = tuple(f.name for f in dataclasses.fields(MigrationState))

    def __init__(self, state: MigrationState):
        for name in self.__slots__:
            setattr(self, name, getattr(state, name))

    def send(self, rate: float, dt: float):
        self.wire_mib += rate * dt
        self.elapsed += dt

    def new_round(self, size: float, first: bool = False):
        self.phase = MEMORY
        self.round = 0 if first else self.round + 1
        self.to_send = size
        self.round_size = size
        self.dirty = 0.0
        self.rounds = self.rounds + ((self.elapsed, size),)

    def freeze(self) -> MigrationState:
        return MigrationState(**{name: getattr(self, name) for name in self.__slots__})


def _positive(name: str, value: float):
    if not value > 0:
        raise ValueError(f'{name} must be greater than 0, got {value}')


def _non_negative(name: str, value: float):
    if not value >= 0:
        raise ValueError(f'{name} must not be negative, got {value}')
