"""slm-bench's operator controls: what its figures show holds, on every shipped scenario."""

from __future__ import annotations

import pytest

from slm_plugin.cmd import bench, bench_controls
from slm_plugin.scenario import loader


@pytest.fixture(scope='module')
def result():
    return {'budget': bench_controls.budget(0, 0.1),
            'deadlines': bench_controls.deadlines(0, 0.1),
            'eta': bench_controls.eta_error(0, 0.1),
            'link_learning': bench.link_learning(0, 0.1, scenarios=['three-tier-web'],
                                                 strategies=('parallel',))}


def test_a_budget_is_never_exceeded_by_the_caps_nor_by_the_paced_rates(result):
    rows = result['budget']
    assert {r['scenario'] for r in rows} == set(loader.shipped())
    for r in rows:
        assert r['status'] == 'completed', r
        assert r['max_caps_over_budget'] <= 1.0, r
        assert r['max_rates_over_budget'] <= 1.0 + 1e-6, r
        assert r['makespan_s'] >= r['makespan_without_budget_s'] * 0.95, r


def test_deadlines_the_model_cannot_meet_are_refused_and_the_others_are_met(result):
    for r in result['deadlines']:
        if r['factor'] < 1.0:
            assert r['refused'], r
            continue
        assert not r['refused'] and r['met'], r
        # as late as is safe: with room to spare, the start is not at once
        if r['factor'] >= 1.5:
            assert r['start_at_s'] > 0.1 * r['predicted_s'], r


def test_the_eta_never_runs_backwards_and_is_close_from_half_way(result):
    for r in result['eta']:
        assert r['status'] == 'completed' and not r['progress_went_back'], r
        assert r['max_error_after_half'] <= 0.25, r


def test_the_report_has_a_line_per_row_of_each_control(result):
    text = '\n'.join(bench_controls.report(result))
    for r in result['budget']:
        assert any(line.split()[:2] == [r['scenario'], r['strategy']]
                   and f"{r['makespan_s']:.1f}" in line for line in text.splitlines()), r
    assert text.count('refused') == sum(r['refused'] for r in result['deadlines'])
    full = bench.report({**result, 'comparison': [], 'planner_speed': [],
                         'tick_speed': bench.tick_speed(5, 1),
                         'simulator_speed': bench.simulator_speed(20)})
    assert 'Link bandwidth learned' in full and 'three-tier-web     parallel' in full
