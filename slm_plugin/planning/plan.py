"""Plans and control decisions as plain data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from slm_plugin.control.cloud import Progress
from slm_plugin.scenario.model import Scenario


@dataclass(frozen=True, slots=True)
class MemberPlan:
    member: str
    group: str
    source: str
    destination: str
    wave: int  # members of one wave start together; waves run in order
    cap_mibps: float | None  # initial max speed; None means uncapped
    predicted_start_s: float
    predicted_switchover_s: float
    predicted_downtime_s: float
    predicted_wire_mib: float
    completion: str  # converged, pause, postcopy (how it is expected to finish)


@dataclass(frozen=True, slots=True)
class Plan:
    strategy: str
    members: tuple[MemberPlan, ...]
    lower_bound_s: float
    notes: tuple[str, ...] = ()

    def member(self, name: str) -> MemberPlan:
        for m in self.members:
            if m.member == name:
                return m
        raise KeyError(name)

    @property
    def destinations(self) -> dict[str, str]:
        return {m.member: m.destination for m in self.members}


@dataclass(frozen=True, slots=True)
class View:
    """What a planner sees at one control tick."""

    scenario: Scenario
    plan: Plan
    now: float
    progress: Mapping[str, Progress]  # members started so far
    #: the control loop's period as it runs (a loaded engine's ticks stretch): how long
    #: a decision lasts; 0 when unknown
    tick_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Decision:
    """What the control loop should do now; anything absent stays as it is."""

    start: tuple[tuple[str, str, float | None], ...] = ()  # (member, destination, cap)
    caps: Mapping[str, float | None] = field(default_factory=dict)
    hold: Mapping[str, bool] = field(default_factory=dict)
    force: tuple[tuple[str, str], ...] = ()  # (member, pause | postcopy)
    notes: tuple[str, ...] = ()


def format_table(plan: Plan) -> str:
    """The dry-run view of a plan, one row per member."""
    head = ('member', 'group', 'source', 'destination', 'wave', 'cap MiB/s', 'start s',
            'switchover s', 'downtime ms', 'wire MiB', 'completion')
    rows = [head]
    for m in plan.members:
        rows.append((
            m.member, m.group, m.source, m.destination, str(m.wave),
            '-' if m.cap_mibps is None else f'{m.cap_mibps:.1f}',
            f'{m.predicted_start_s:.1f}', f'{m.predicted_switchover_s:.1f}',
            f'{m.predicted_downtime_s * 1000:.0f}', f'{m.predicted_wire_mib:.0f}', m.completion,
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ['  '.join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, '  '.join('-' * w for w in widths))
    lines.append(f'strategy {plan.strategy}; lower bound on makespan {plan.lower_bound_s:.1f} s')
    lines.extend(f'note: {n}' for n in plan.notes)
    return '\n'.join(lines)
