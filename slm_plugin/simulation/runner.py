"""Run one strategy on one scenario in the simulated cloud, end to end."""

from __future__ import annotations

from dataclasses import dataclass

from slm_plugin import planning
from slm_plugin.execution.loop import ControlLoop, Outcome
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

    @property
    def lower_bound_s(self) -> float:
        return self.plan.lower_bound_s

    @property
    def summary(self) -> dict[str, float]:
        return summary(self.groups)


def simulate(scenario: Scenario, strategy: str, tick_s: float = 1.0, seed: int = 0,
             dirty_noise: float = 0.0, observer=None, deadline_s: float = 7 * 86400.0) -> Run:
    planner = planning.get(strategy)
    plan = planner.plan(scenario)
    cloud = SimulatedCloud(scenario, seed=seed, dirty_noise=dirty_noise)
    loop = ControlLoop(cloud, scenario, planner, plan, tick_s=tick_s, deadline_s=deadline_s,
                       observer=observer)
    outcome = loop.run()
    results = tuple(cloud.results())
    return Run(scenario, strategy, plan, outcome, results,
               tuple(group_metrics(scenario, results, cloud.split_traffic_mib)))
