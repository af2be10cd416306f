"""slm-bench's figures for the operator's controls: the bandwidth budget, the deadline, the ETA.

Each runs shipped scenarios through the same planners, control loop and
simulated cloud as a real job, with the guests' true dirty rates perturbed
(``dirty_noise``) so that the plan is a prediction, not the outcome.
"""

from __future__ import annotations

import dataclasses
import statistics

from slm_plugin import exception, planning
from slm_plugin.control import cloud as api
from slm_plugin.control import eta
from slm_plugin.control.loop import ControlLoop
from slm_plugin.planning import window
from slm_plugin.scenario import loader
from slm_plugin.simulation.cloud import SimulatedCloud
from slm_plugin.simulation.metrics import group_metrics, summary
from slm_plugin.simulation.runner import forecast

STRATEGIES = ('synchronized', 'parallel', 'sequential')
#: the budget, as a share of the scenario's link
BUDGET_SHARE = 0.5
#: deadlines tried, as multiples of the predicted duration (1.0 and less: refused or tight)
DEADLINE_FACTORS = (0.9, 1.1, 1.5)


class CapsSeen(SimulatedCloud):
    """The simulated cloud, keeping the max speed last set on each migration."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.caps: dict[str, float | None] = {}

    def start(self, member, destination, cap_mibps):
        super().start(member, destination, cap_mibps)
        self.caps[member] = cap_mibps

    def set_cap(self, member, cap_mibps):
        super().set_cap(member, cap_mibps)
        self.caps[member] = cap_mibps


def _run(scenario, strategy, seed, dirty_noise, observer=None, cloud_class=SimulatedCloud):
    planner = planning.get(strategy)
    plan = planner.plan(scenario)
    cloud = cloud_class(scenario, seed=seed, dirty_noise=dirty_noise)
    outcome = ControlLoop(cloud, scenario, planner, plan, tick_s=1.0,
                          observer=observer(cloud) if observer else None).run()
    results = tuple(cloud.results())
    return plan, outcome, summary(group_metrics(scenario, results, cloud.split_traffic_mib))


def budget(seed: int, dirty_noise: float, scenarios=None, strategies=STRATEGIES) -> list[dict]:
    """With a budget of half the link: at every look, the caps in force and the rates
    achieved, summed over the job's migrations, against the budget."""
    rows = []
    for name in scenarios or sorted(loader.shipped()):
        told = loader.load_shipped(name)
        limit = BUDGET_SHARE * min(link.capacity_mibps for link in told.links)
        scenario = dataclasses.replace(told, limits=dataclasses.replace(
            told.limits, max_bandwidth_mibps=limit))
        for strategy in strategies:
            seen = {'caps': 0.0, 'rates': 0.0, 'rates_all': 0.0}

            def watch(cloud, seen=seen):
                def look(now, progress):
                    moving = [n for n, p in progress.items() if p.status == api.MIGRATING]
                    caps = [cloud.caps.get(n) for n in moving]
                    if moving:
                        seen['caps'] = max(seen['caps'], float('inf') if None in caps
                                           else sum(caps))
                    # QEMU lifts the max speed for the stop-and-copy, which the budget
                    # does not cover: a migration moving faster than its cap is in it
                    paced = [progress[n].throughput_mibps for n, c in zip(moving, caps, strict=True)
                             if c is not None and progress[n].throughput_mibps <= 1.01 * c]
                    seen['rates'] = max(seen['rates'], sum(paced))
                    seen['rates_all'] = max(seen['rates_all'], sum(
                        p.throughput_mibps for p in progress.values()))
                return look
            _, outcome, figures = _run(scenario, strategy, seed, dirty_noise, watch, CapsSeen)
            _, _, free = _run(told, strategy, seed, dirty_noise)
            rows.append({'scenario': name, 'strategy': strategy, 'budget_mibps': limit,
                         'status': outcome.status,
                         'max_caps_over_budget': seen['caps'] / limit,
                         'max_rates_over_budget': seen['rates'] / limit,
                         'max_rates_with_stopcopy_over_budget': seen['rates_all'] / limit,
                         'makespan_s': figures['makespan_s'],
                         'makespan_without_budget_s': free['makespan_s']})
    return rows


def deadlines(seed: int, dirty_noise: float, scenarios=None,
              strategy: str = 'synchronized') -> list[dict]:
    """Deadlines at multiples of the predicted duration: refused where the model says no
    plan meets them; otherwise started as late as is safe, and met or missed."""
    rows = []
    now = 0.0
    for name in scenarios or sorted(loader.shipped()):
        scenario = loader.load_shipped(name)
        planner = planning.get(strategy)
        predicted = forecast(scenario, planner.plan(scenario), planner)
        predicted_s = max(m.predicted_switchover_s for m in predicted.members)
        for factor in DEADLINE_FACTORS:
            complete_by = now + factor * predicted_s
            row = {'scenario': name, 'factor': factor, 'predicted_s': predicted_s}
            try:
                plan = window.schedule(now, predicted_s, complete_by=complete_by)
            except exception.Invalid:
                rows.append({**row, 'refused': True})
                continue
            _, outcome, figures = _run(scenario, strategy, seed, dirty_noise)
            end = plan.start_at + figures['makespan_s']
            rows.append({**row, 'refused': False, 'start_at_s': plan.start_at,
                         'margin_s': plan.margin_s, 'end_s': end,
                         'met': end <= complete_by and outcome.status == 'completed',
                         'slack_s': complete_by - end})
    return rows


def eta_error(seed: int, dirty_noise: float, scenarios=None,
              strategies=('synchronized', 'parallel')) -> list[dict]:
    """The group's predicted switchover (control.eta) at each quarter of the job's life,
    against when it really switched over; and whether its progress ever went back."""
    rows = []
    for name in scenarios or sorted(loader.shipped()):
        scenario = loader.load_shipped(name)
        for strategy in strategies:
            planner = planning.get(strategy)
            predicted = forecast(scenario, planner.plan(scenario), planner)
            looks: list[tuple[float, float | None, float]] = []
            state = {'fraction': 0.0}

            def watch(cloud, looks=looks, state=state, predicted=predicted):
                def look(now, progress):
                    g = eta.estimate(predicted, progress, now, state['fraction'])
                    looks.append((now, g.eta_s, g.fraction))
                    state['back'] = state.get('back', False) or g.fraction < state['fraction']
                    state['fraction'] = g.fraction
                return look
            _, outcome, figures = _run(scenario, strategy, seed, dirty_noise, watch)
            end = figures['makespan_s']
            errors = {}
            for quarter in (0.25, 0.5, 0.75):
                t, eta_s, _ = min(looks, key=lambda x: abs(x[0] - quarter * end))
                errors[quarter] = None if eta_s is None else (eta_s - end) / end
            later = [abs(e - end) / end for t, e, _ in looks if t >= end / 2 and e is not None]
            rows.append({'scenario': name, 'strategy': strategy, 'end_s': end,
                         'status': outcome.status,
                         'error_at': errors, 'max_error_after_half': max(later, default=0.0),
                         'median_error_after_half': statistics.median(later) if later else 0.0,
                         'progress_went_back': state.get('back', False)})
    return rows


def report(result: dict) -> list[str]:
    lines = ['', f"Bandwidth budget: {BUDGET_SHARE:.0%} of the link; the most the job's "
             'caps and rates summed to at any look, over the budget (target: caps <= 1.00)',
             '']
    head = (f"{'scenario':18} {'strategy':13} {'budget':>7} {'caps':>5} {'rates':>6} "
            f"{'+stop&copy':>10} {'makespan s':>11} {'no budget':>10}")
    lines += [head, '-' * len(head)]
    for r in result.get('budget', ()):
        lines.append(f"{r['scenario']:18} {r['strategy']:13} {r['budget_mibps']:7.0f} "
                     f"{r['max_caps_over_budget']:5.2f} {r['max_rates_over_budget']:6.2f} "
                     f"{r['max_rates_with_stopcopy_over_budget']:10.2f} "
                     f"{r['makespan_s']:11.1f} {r['makespan_without_budget_s']:10.1f}")
    lines += ['', 'Deadlines (synchronized): at multiples of the predicted duration, started '
              'as late as is safe', '']
    head = (f"{'scenario':18} {'deadline':>8} {'predicted s':>11} {'answer':>9} "
            f"{'start s':>8} {'margin s':>8} {'slack s':>8}")
    lines += [head, '-' * len(head)]
    for r in result.get('deadlines', ()):
        if r['refused']:
            lines.append(f"{r['scenario']:18} {r['factor']:7.1f}x {r['predicted_s']:11.1f} "
                         f"{'refused':>9}")
            continue
        lines.append(f"{r['scenario']:18} {r['factor']:7.1f}x {r['predicted_s']:11.1f} "
                     f"{'met' if r['met'] else 'MISSED':>9} {r['start_at_s']:8.1f} "
                     f"{r['margin_s']:8.1f} {r['slack_s']:8.1f}")
    lines += ['', 'ETA: the predicted switchover against the real one, (predicted - real) / '
              'real, at a quarter, half and three quarters of the job (target: within 20 % '
              'from half-way)', '']
    head = (f"{'scenario':18} {'strategy':13} {'end s':>8} {'25 %':>7} {'50 %':>7} "
            f"{'75 %':>7} {'max after half':>14} {'went back':>9}")
    lines += [head, '-' * len(head)]
    for r in result.get('eta', ()):
        cells = [f"{'-':>7}" if e is None else f'{e:+7.1%}' for e in r['error_at'].values()]
        lines.append(f"{r['scenario']:18} {r['strategy']:13} {r['end_s']:8.1f} "
                     + ' '.join(cells) + f" {r['max_error_after_half']:14.1%} "
                     f"{'yes' if r['progress_went_back'] else 'no':>9}")
    return lines
