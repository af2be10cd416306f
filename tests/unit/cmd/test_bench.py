"""slm-bench: the comparison rows agree with their own figures; the speed probes report.

Speed is not asserted here: a loaded test machine would make that flaky.
"""

from __future__ import annotations

import json
import math

import pytest

from slm_plugin import planning
from slm_plugin.cmd import bench
from slm_plugin.scenario import loader

STRATEGIES = ['synchronized', 'parallel']


@pytest.fixture(scope='module')
def rows():
    return bench.compare(0, 0.1, scenarios=['database-heavy'], strategies=STRATEGIES)


@pytest.fixture(scope='module')
def result():
    """What main() puts together, on a small scale: every shipped scenario, two strategies."""
    return {
        'comparison': bench.compare(0, 0.1, strategies=STRATEGIES),
        'planner_speed': bench.planner_speed(10, 5, 1),
        'tick_speed': bench.tick_speed(50, 2),
        'simulator_speed': bench.simulator_speed(20),
    }


def test_compare_gives_one_row_per_strategy(rows):
    assert [(r['scenario'], r['strategy']) for r in rows] == [
        ('database-heavy', s) for s in STRATEGIES]
    for r in rows:
        assert r['status'] == 'completed'
        assert r['lower_bound_s'] > 0
        assert isinstance(r['notes'], list)


def test_compare_ratios_agree_with_the_rows(rows):
    by = {r['strategy']: r for r in rows}
    base = by['parallel']
    least_wan = min(r['wan_mib'] for r in rows)
    for r in rows:
        assert r['makespan_vs_parallel'] == pytest.approx(r['makespan_s'] / base['makespan_s'])
        assert r['split_vs_parallel'] == pytest.approx(r['split_time_s'] / base['split_time_s'])
        assert r['makespan_over_lower_bound'] == pytest.approx(
            r['makespan_s'] / r['lower_bound_s'])
        assert r['split_over_makespan'] == pytest.approx(r['split_time_s'] / r['makespan_s'])
        assert r['wan_over_least'] == pytest.approx(r['wan_mib'] / least_wan)
        assert r['wan_over_least'] >= 1.0
        # no makespan beats the lower bound
        assert r['makespan_over_lower_bound'] >= 1.0
    assert base['makespan_vs_parallel'] == base['split_vs_parallel'] == 1.0
    # the point of the synchronized strategy, on the scenario built to show it
    assert by['synchronized']['split_vs_parallel'] <= 0.05


def test_compare_without_the_baseline_has_no_ratios_to_it():
    rows = bench.compare(0, 0.1, scenarios=['database-heavy'], strategies=['synchronized'])
    assert len(rows) == 1
    assert 'makespan_vs_parallel' not in rows[0] and 'split_vs_parallel' not in rows[0]
    assert rows[0]['wan_over_least'] == 1.0


def test_split_ratio_of_zero_splits():
    assert bench._ratio(0.0, 0.0) == 0.0
    assert bench._ratio(1.0, 0.0) == math.inf
    assert bench._ratio(1.0, 4.0) == 0.25


def test_planner_speed_has_a_row_per_planner():
    out = bench.planner_speed(10, 5, 1)
    assert [r['strategy'] for r in out] == list(planning.names())
    for r in out:
        assert r['vms'] == 50 and r['groups'] == 10
        assert r['seconds'] > 0


def test_tick_speed_reports_the_live_migrations():
    t = bench.tick_speed(50, 2)
    assert t['live_migrations'] == 50
    for key in ('read_progress_s', 'decide_s', 'apply_caps_s', 'simulate_1s_s'):
        assert t[key] >= 0


def test_simulator_speed_counts_what_it_ran(result):
    s = result['simulator_speed']
    assert s['migrations'] == 20
    assert s['simulated_s'] > 0 and s['wall_s'] > 0 and s['ticks'] > 0


def test_report_renders_every_scenario_and_strategy(result):
    text = bench.report(result)
    lines = text.splitlines()
    assert {r['scenario'] for r in result['comparison']} == set(loader.shipped())
    targets = [line for line in lines if 'split<=1%' in line]
    table = [line for line in lines if line not in targets]
    for r in result['comparison']:
        rows = [line for line in table if line.split()[:2] == [r['scenario'], r['strategy']]]
        assert len(rows) == 1, (r['scenario'], r['strategy'])
        assert f"{r['makespan_s']:.1f}" in rows[0]
    # a line of targets met or missed for each scenario's synchronized row
    for name in loader.shipped():
        marks = [line for line in targets if line.split()[:2] == [name, 'synchronized']]
        assert len(marks) == 1, name
    for r in result['planner_speed']:
        assert any(line.strip().startswith(r['strategy']) and 'VMs in' in line
                   for line in lines)
    assert 'Control tick with 50 live migrations' in text
    assert 'Simulator: 20 migrations' in text


def test_result_is_json(result):
    # main --json dumps the same dict
    assert json.loads(json.dumps(result))['tick_speed']['live_migrations'] == 50
