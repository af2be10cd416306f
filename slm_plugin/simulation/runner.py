"""Run one strategy on one scenario in the simulated cloud, end to end."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

from slm_plugin import planning
from slm_plugin.control.loop import ControlLoop, Outcome
from slm_plugin.planning.plan import Plan
from slm_plugin.scenario.model import Scenario
from slm_plugin.simulation.cloud import MemberResult, SimulatedCloud
from slm_plugin.simulation.metrics import GroupMetrics, group_metrics, summary


@dataclass(frozen=True, slots=True)
class Run:
    scenario: Scenario
    strategy: str
    plan: Plan
    outcome: Outcome
    results: tuple[MemberResult, ...]
    groups: tuple[GroupMetrics, ...]
    #: (cloud seconds, {link: learned MiB/s}) at every change of the status monitor's estimate
    link_history: tuple[tuple[float, dict[str, float]], ...] = ()

    @property
    def lower_bound_s(self) -> float:
        return self.plan.lower_bound_s

    @property
    def summary(self) -> dict[str, float]:
        return summary(self.groups)


def simulate(scenario: Scenario, strategy: str, tick_s: float = 1.0, seed: int = 0,
             dirty_noise: float = 0.0, observer=None, deadline_s: float = 7 * 86400.0,
             plan: Plan | None = None, planner=None, actual: Scenario | None = None,
             learn_links: bool = True) -> Run:
    """Plan (unless given the plan) and run one strategy in a fresh simulated cloud.

    ``actual`` is the cloud as it really is where it differs from what the planner is
    told (``scenario``): a link slower than configured, say.
    """
    planner = planner or planning.get(strategy)
    plan = plan or planner.plan(scenario)
    cloud = SimulatedCloud(actual or scenario, seed=seed, dirty_noise=dirty_noise)
    loop = ControlLoop(cloud, scenario, planner, plan, tick_s=tick_s, deadline_s=deadline_s,
                       observer=observer, learn_links=learn_links)
    outcome = loop.run()
    results = tuple(cloud.results())
    return Run(scenario, strategy, plan, outcome, results,
               tuple(group_metrics(actual or scenario, results, cloud.split_traffic_mib)),
               tuple(loop.links.history))


def forecast(scenario: Scenario, plan: Plan, planner=None, tick_s: float = 1.0) -> Plan:
    """``plan`` with its figures predicted by simulating it.

    The simulation runs on the scenario's own estimates (no noise), with the
    same plan, planner and control loop that will run for real, so the
    prediction includes re-planning, holds and the release, which no closed
    form does.
    """
    # a copy: what a planner learns while it runs (waves released, links measured)
    # belongs to one run, and the real one comes after this
    planner = copy.deepcopy(planner) if planner is not None else None
    run = simulate(scenario, plan.strategy, tick_s=tick_s, plan=plan, planner=planner)
    by_name = {r.member: r for r in run.results}
    rows = []
    for m in run.plan.members:
        r = by_name.get(m.member)
        if r is None or r.switchover_s is None:
            rows.append(m)
            continue
        rows.append(dataclasses.replace(
            m, predicted_start_s=r.start_s, predicted_switchover_s=r.switchover_s,
            predicted_downtime_s=r.downtime_s or 0.0, predicted_wire_mib=r.wire_mib,
            completion=r.completion,
        ))
    notes = run.plan.notes + tuple(n for n in run.outcome.notes if n not in run.plan.notes)
    return dataclasses.replace(run.plan, members=tuple(rows), notes=notes)
