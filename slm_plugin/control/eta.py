"""A group's predicted switchover instant and its progress, from what its migrations show.

What ``show`` and ``--wait`` give an operator while a job runs: *when* the
group will have switched over, re-predicted at every progress write from the
bytes its migrations have sent, and *how far* it is, as a share that only
grows.

Why not the plain ratio of bytes sent to bytes left: a pre-copy round that
finds more dirty memory than the last one makes "left" grow, and a share
built on it runs backwards (operators of KubeVirt report exactly that). Here
each member counts what it has sent, up to the bytes its plan predicted it
would send in all, against those predicted bytes; bytes sent never decrease,
so neither does the share, and it reaches 1 only when every member has ended.

The instant is the plan's, shifted by how far the job is behind (or ahead of)
its plan: the plan says when each member sends its bytes (evenly, from its
predicted start to its predicted switchover); the instant at which the plan
expected the share observed now is found, and the job is that much late. A
physical estimate (what is left over the throughput less the dirty rate) was
tried first and ran far too long for parallel groups: members that share a
link read as slow until the others end and free it (hadoop: 859 s predicted
at half-way for a job that ended at 373 s).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from slm_plugin.control import cloud as api
from slm_plugin.planning.plan import Plan

NOT_DONE = 0.99  # the most a member that has not ended counts for


@dataclass(frozen=True, slots=True)
class GroupProgress:
    fraction: float  # 0 to 1; never lower than the previous one
    eta_s: float | None  # job seconds at which the last member is predicted to switch over


def estimate(plan: Plan, progress: Mapping[str, api.Progress], now: float,
             previous: float = 0.0) -> GroupProgress:
    if not plan.members:
        return GroupProgress(1.0, None)
    done = total = 0.0
    for mp in plan.members:
        expected = max(mp.predicted_wire_mib, 1e-9)
        total += expected
        p = progress.get(mp.member)
        if p is None:
            continue
        if p.status in api.FINAL or p.status in api.RESUMED:
            done += expected
        else:
            done += min(p.wire_mib, NOT_DONE * expected)
    fraction = done / total
    ended = [progress.get(m.member) for m in plan.members]
    if all(p is not None and p.status in api.FINAL for p in ended):
        ends = [p.switchover_at if p.switchover_at is not None else p.finished_at
                for p in ended]
        known = [e for e in ends if e is not None]
        return GroupProgress(1.0, max(known) if known else None)
    fraction = max(previous, min(fraction, NOT_DONE))
    planned_end = max(m.predicted_switchover_s for m in plan.members)
    lag = now - _planned_instant(plan, fraction, total)
    return GroupProgress(fraction, max(now, planned_end + lag))


def _planned_share(plan: Plan, t: float, total: float) -> float:
    sent = 0.0
    for m in plan.members:
        length = m.predicted_switchover_s - m.predicted_start_s
        part = 1.0 if length <= 0 else (t - m.predicted_start_s) / length
        sent += max(0.0, min(1.0, part)) * m.predicted_wire_mib
    return sent / total


def _planned_instant(plan: Plan, fraction: float, total: float) -> float:
    """When the plan has the group at ``fraction`` (its share only grows with time)."""
    low = min(m.predicted_start_s for m in plan.members)
    high = max(m.predicted_switchover_s for m in plan.members)
    for _ in range(50):
        mid = (low + high) / 2
        if _planned_share(plan, mid, total) < fraction:
            low = mid
        else:
            high = mid
    return high
