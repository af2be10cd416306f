"""slm-demo: synchronized live migration of a Hadoop-style group, with no cloud at hand.

The engine's own pieces run embedded: the planners and the control loop drive a
simulated two-site cloud, and the job is recorded in SQLite through the same
database layer and migrations the service uses. The group migrates with the
synchronized strategy while the terminal shows its progress; then the same
group, guests and seed run with today's strategies (parallel, sequential), and
the figures and a timeline picture compare them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from slm_plugin import exception, planning
from slm_plugin.cmd.common import fail, load_scenario, override
from slm_plugin.context import get_admin_context
from slm_plugin.db import api as db
from slm_plugin.db import migration
from slm_plugin.engine.journal import Journal
from slm_plugin.planning.plan import format_table
from slm_plugin.report import format_comparison, write_timeline
from slm_plugin.report.progress import ProgressView
from slm_plugin.simulation.runner import forecast, simulate

BASELINES = ('parallel', 'sequential')


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog='slm-demo', description=__doc__.splitlines()[0])
    p.add_argument('--scenario', default='hadoop',
                   help='a scenario YAML file or the name of a shipped one (default: hadoop)')
    p.add_argument('--group', action='append', default=[],
                   help='migrate only this server group (repeatable)')
    p.add_argument('--output-dir', default='out/slm-demo',
                   help='where the SQLite database and the timeline picture go')
    p.add_argument('--speed', type=float, default=None,
                   help='simulated seconds per wall second for the live view '
                   '(default 40 on a terminal, as fast as possible otherwise)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--dirty-noise', type=float, default=0.1,
                   help="how far the guests' true dirty rates stray from the estimates")
    p.add_argument('--compare', default=','.join(BASELINES),
                   help="strategies to compare with (comma-separated; default "
                   f"{','.join(BASELINES)})")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        scenario = override(load_scenario(args.scenario), args.group)
        compare = [s for s in args.compare.split(',') if s]
        for s in compare:
            planning.check(s)
        planner = planning.get('synchronized')
        plan = planner.plan(scenario)
        predicted = forecast(scenario, plan, planner)
    except (exception.UsageError, exception.ScenarioError, exception.PlanError) as exc:
        return fail(str(exc))
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    speed = args.speed if args.speed is not None else (40.0 if sys.stdout.isatty() else 0.0)

    _describe(scenario)
    print("\nPlan (figures predicted by simulating the plan on the scenario's estimates):\n")
    print(format_table(predicted))

    url = f"sqlite:///{(out / 'slm.sqlite').resolve()}"
    migration.upgrade(url)
    manager = db.create_context_manager(url)
    context = get_admin_context(db_connection=manager)
    groups = [g.name for g in scenario.groups if g.name in {m.group for m in plan.members}]
    journal = Journal(context, plan, group_id=','.join(groups), group_name=','.join(groups),
                      request={'scenario': scenario.name, 'strategy': 'synchronized'})
    names = [m.member for m in plan.members]
    view = ProgressView(scenario, names, speed=speed)
    print(f"\nMigrating {', '.join(groups)} with the synchronized strategy "
          f"(job {journal.job_id}):\n")

    def observe(now, progress):
        journal.observe(now, progress)
        view(now, progress)

    run = simulate(scenario, 'synchronized', seed=args.seed, dirty_noise=args.dirty_noise,
                   observer=observe, plan=plan)
    journal.finish(run.outcome.status, run.outcome.finished_at)
    runs = [run] + [simulate(scenario, s, seed=args.seed, dirty_noise=args.dirty_noise)
                    for s in compare]
    events = len(db.list_events(context, journal.job_id))
    manager.dispose_pool()

    print(f'\nSame group, same guests, each strategy (lower bound on makespan '
          f'{run.lower_bound_s:.1f} s):\n')
    print(format_comparison(runs))
    for note in run.plan.notes + run.outcome.notes:
        print(f'note: {note}')
    picture = write_timeline(runs, out / 'timeline.png')
    print(f'\nTimeline picture: {picture}')
    print(f"Job record: {out / 'slm.sqlite'} (job {journal.job_id}, {events} events)")
    return 0 if run.outcome.status == 'completed' else 1


def _describe(scenario) -> None:
    print(f'slm-demo: {scenario.description or scenario.name}')
    for site in scenario.sites:
        hosts = [h for h in scenario.hosts if h.site == site]
        print(f'  site {site}: {len(hosts)} hosts')
    for link in scenario.links:
        print(f'  link {link.name}: {link.capacity_mibps:.0f} MiB/s, {link.latency_ms:.0f} ms')
    for g in scenario.groups:
        total = sum(m.vm.memory_mib for m in g.members) / 1024
        print(f'  group {g.name} ({g.policy}): {len(g.members)} members, {total:.0f} GiB of memory')


if __name__ == '__main__':
    sys.exit(main())
