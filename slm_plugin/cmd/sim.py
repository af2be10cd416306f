"""slm-sim: one scenario, one strategy, in the simulated cloud."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from slm_plugin import exception, planning
from slm_plugin.cmd.common import fail, load_scenario, override
from slm_plugin.planning.plan import format_table
from slm_plugin.simulation.runner import Run, forecast, simulate

MIB = 1024 * 1024


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog='slm-sim', description="Simulate migrating a scenario's server groups with one "
        "strategy and print what happened.")
    p.add_argument('--scenario', required=True,
                   help='a scenario YAML file, or the name of a shipped scenario')
    p.add_argument('--strategy', default='synchronized',
                   help='planner name (default: synchronized)')
    p.add_argument('--group', action='append', default=[],
                   help='migrate only this server group (repeatable)')
    p.add_argument('--to-site', help='send the groups to this site instead')
    p.add_argument('--seed', type=int, default=0, help='seed of the simulated guests')
    p.add_argument('--dirty-noise', type=float, default=0.1,
                   help="relative error of the scenario's dirty rates against the guests' "
                   "true ones (default 0.1)")
    p.add_argument('--tick', type=float, default=1.0, help='control tick in seconds')
    p.add_argument('--dry-run', action='store_true',
                   help="print the plan with predicted figures (simulated on the scenario's "
                   "own estimates) and stop")
    p.add_argument('--json', action='store_true', help='print one JSON object')
    return p


def plan_to_json(plan) -> dict:
    return {
        'strategy': plan.strategy,
        'lower_bound_s': plan.lower_bound_s,
        'members': [dataclasses.asdict(m) for m in plan.members],
        'notes': list(plan.notes),
    }


def to_json(run: Run) -> dict:
    return {
        'scenario': run.scenario.name,
        'strategy': run.strategy,
        'lower_bound_s': run.lower_bound_s,
        'status': run.outcome.status,
        'groups': [{
            'name': g.name,
            'split_time_s': g.split_time_s,
            'makespan_s': g.makespan_s,
            'eviction_time_s': g.eviction_time_s,
            'wan_bytes': round(g.wan_mib * MIB),
            'split_traffic_bytes': round(g.split_traffic_mib * MIB),
            'max_downtime_ms': g.max_downtime_s * 1000,
            'members': [{
                'name': r.member,
                'source': r.source,
                'destination': r.destination,
                'start_s': r.start_s,
                'switchover_s': r.switchover_s,
                'downtime_ms': None if r.downtime_s is None else r.downtime_s * 1000,
                'bytes': round(r.wire_mib * MIB),
                'rounds': len(r.rounds),
                'completion': r.completion,
            } for r in g.members],
        } for g in run.groups],
        'notes': list(run.plan.notes) + list(run.outcome.notes),
    }


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.tick <= 0:
            raise exception.UsageError(f'--tick must be positive, got {args.tick}')
        if args.dirty_noise < 0:
            raise exception.UsageError(
                f'--dirty-noise must not be negative, got {args.dirty_noise}')
        scenario = override(load_scenario(args.scenario), args.group, args.to_site)
        if args.dry_run:
            planner = planning.get(args.strategy)
            plan = forecast(scenario, planner.plan(scenario), planner, tick_s=args.tick)
            if args.json:
                print(json.dumps(plan_to_json(plan), indent=2))
            else:
                print(format_table(plan))
            return 0
        run = simulate(scenario, args.strategy, tick_s=args.tick, seed=args.seed,
                       dirty_noise=args.dirty_noise)
    except (exception.UsageError, exception.ScenarioError, exception.PlanError) as exc:
        return fail(str(exc))
    if args.json:
        json.dump(to_json(run), sys.stdout, indent=2)
        print()
    else:
        _print_run(run)
    return 0 if run.outcome.status == 'completed' else 1


def _print_run(run: Run) -> None:
    print(f'scenario {run.scenario.name}, strategy {run.strategy}: {run.outcome.status}; '
          f'lower bound on makespan {run.lower_bound_s:.1f} s')
    for g in run.groups:
        print(f'  group {g.name}: split {g.split_time_s:.2f} s, makespan {g.makespan_s:.1f} s, '
              f'eviction {g.eviction_time_s:.1f} s, WAN {g.wan_mib / 1024:.1f} GiB, '
              f'max downtime {g.max_downtime_s * 1000:.0f} ms')
    for note in run.plan.notes + run.outcome.notes:
        print(f'  note: {note}')


if __name__ == '__main__':
    sys.exit(main())
