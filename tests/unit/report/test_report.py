"""The report: timeline PNG of runs and the comparison table."""

from __future__ import annotations

import dataclasses
import math

import matplotlib.image as mpimg
import pytest

from slm_plugin.report import build_figure, format_comparison, timeline, write_timeline
from slm_plugin.scenario import loader
from slm_plugin.simulation.cloud import MemberResult
from slm_plugin.simulation.metrics import group_metrics
from slm_plugin.simulation.runner import simulate

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
STRATEGIES = ('synchronized', 'parallel', 'sequential')


@pytest.fixture(scope='module')
def runs():
    scenario = loader.load_shipped('database-heavy')
    return [simulate(scenario, s, dirty_noise=0.1) for s in STRATEGIES]


@pytest.fixture(scope='module')
def evict_run():
    return simulate(loader.load_shipped('database-heavy'), 'evict', dirty_noise=0.1)


def _split_labels(ax) -> list[str]:
    return [t.get_text() for t in ax.texts if t.get_gid() == 'split-label']


# -- the PNG ---------------------------------------------------------------------------


def test_png_is_written_and_decodes(runs, tmp_path):
    out = write_timeline(runs, tmp_path / 'sub' / 'timeline.png')
    assert out == tmp_path / 'sub' / 'timeline.png'
    data = out.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    image = mpimg.imread(out)
    height, width = image.shape[:2]
    assert 1300 <= width <= 1340  # 12 in at 110 dpi
    assert 450 <= height <= 900  # three panels of four members
    assert image.shape[2] in (3, 4)
    # not blank: bars, bands and text make several distinct colours
    assert len({tuple(px) for px in image[::7, ::7].reshape(-1, image.shape[2])}) > 8


def test_same_input_gives_identical_bytes(runs, tmp_path):
    a = write_timeline(runs, tmp_path / 'a.png').read_bytes()
    b = write_timeline(runs, tmp_path / 'b.png').read_bytes()
    assert a == b
    assert b'Software' not in a and b'matplotlib' not in a.lower()


def test_write_accepts_a_string_path(runs, tmp_path):
    out = write_timeline(runs[:1], str(tmp_path / 'one.png'))
    assert out.read_bytes()[:8] == PNG_SIGNATURE


def test_no_runs_is_an_error():
    with pytest.raises(ValueError):
        build_figure([])


# -- the figure --------------------------------------------------------------------------


def test_one_panel_per_run_titled_with_its_figures(runs):
    fig = build_figure(runs)
    assert len(fig.axes) == len(runs)
    for ax, run in zip(fig.axes, runs, strict=True):
        s = run.summary
        title = ax.get_title(loc='left')
        assert title.startswith(f'{run.strategy}: ')
        assert f"split {s['split_time_s']:.1f} s" in title
        assert f"makespan {s['makespan_s']:.1f} s" in title
        assert f"WAN {s['wan_mib'] / 1024:.1f} GiB" in title
        assert f"max downtime {s['max_downtime_s'] * 1000:.0f} ms" in title
    # the panels share the time axis
    xlims = {ax.get_xlim() for ax in fig.axes}
    assert len(xlims) == 1
    assert next(iter(xlims))[1] >= max(r.summary['eviction_time_s'] for r in runs)
    # a single legend, on the figure
    assert len(fig.legends) == 1
    assert all(ax.get_legend() is None for ax in fig.axes)


def test_split_band_and_label_show_the_runs_split(runs):
    fig = build_figure(runs)
    for ax, run in zip(fig.axes, runs, strict=True):
        split = run.summary['split_time_s']
        assert _split_labels(ax) == [f'split {split:.1f} s']
        switchovers = [r.switchover_s for r in run.results]
        bands = [p for p in ax.patches if p.get_gid() == 'split-band']
        assert len(bands) == 1
        assert bands[0].get_x() == pytest.approx(min(switchovers))
        assert bands[0].get_width() == pytest.approx(split)


def test_one_row_per_member_under_its_group(runs):
    fig = build_figure(runs)
    scenario = runs[0].scenario
    expected = [g.name for g in scenario.groups][:1] + [m.name for m in scenario.members()]
    for ax in fig.axes:
        assert [t.get_text() for t in ax.get_yticklabels()] == expected


def test_postcopy_tail_is_hatched_and_switchovers_ticked(evict_run):
    fig = build_figure([evict_run])
    (ax,) = fig.axes
    tails = [r for r in evict_run.results if r.finish_s > r.switchover_s + 1e-6]
    assert tails  # evict forces post-copy on this scenario
    hatched = [p for p in ax.patches if p.get_hatch()]
    assert len(hatched) == len(tails)
    assert sorted(p.get_width() for p in hatched) == pytest.approx(
        sorted(r.finish_s - r.switchover_s for r in tails))
    ticks = [c for c in ax.collections if c.get_gid() == 'switchover']
    assert len(ticks) == 1
    assert len(ticks[0].get_segments()) == len(evict_run.results)


def test_segments_split_a_bar_into_its_phases():
    r = MemberResult(
        member='m', group='g', source='a', destination='b', status='completed',
        start_s=10.0, switchover_s=70.0, finish_s=85.0, downtime_s=0.1, wire_mib=1.0,
        crosses_wan=True, rounds=((30.0, 100.0), (50.0, 10.0), (60.0, 5.0), (65.0, 1.0)),
        rate_history=(), completion='postcopy')
    segs = timeline._segments(r, end=100.0)
    assert segs == {
        'disk': [(10.0, 20.0)],
        'round0': [(30.0, 20.0)],
        'odd': [(50.0, 10.0), (65.0, 5.0)],
        'even': [(60.0, 5.0)],
        'postcopy': [(70.0, 15.0)],
    }
    # no disk, no tail: round 0 starts the bar and the last round ends at switchover
    plain = dataclasses.replace(r, start_s=30.0, finish_s=70.0)
    segs = timeline._segments(plain, end=100.0)
    assert segs['disk'] == [] and segs['postcopy'] == []
    assert segs['round0'] == [(30.0, 20.0)]


def test_an_aborted_member_is_marked_and_the_split_left_open(runs):
    run = runs[1]  # parallel
    results = list(run.results)
    results[0] = dataclasses.replace(results[0], status='aborted', switchover_s=None,
                                     finish_s=None, downtime_s=None)
    broken = dataclasses.replace(run, results=tuple(results),
                                 groups=tuple(group_metrics(run.scenario, results)))
    fig = build_figure([broken])
    (ax,) = fig.axes
    assert math.isinf(broken.summary['split_time_s'])
    assert _split_labels(ax) == ['split: not all resumed']
    assert 'not all resumed' in ax.get_title(loc='left')
    assert f'{results[0].member} (aborted)' in [t.get_text() for t in ax.get_yticklabels()]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert 'aborted / failed' in legend


def test_many_members_are_cut_to_the_first_groups():
    run = simulate(loader.load_shipped('maintenance-site'), 'parallel')
    groups = run.scenario.groups
    fig = build_figure([run], max_rows=12)
    (ax,) = fig.axes
    shown, rows = [], 0
    for g in groups:
        if rows + len(g.members) > 12:
            break
        shown.append(g)
        rows += len(g.members)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(labels) == len(shown) + rows
    assert [g.name for g in shown] == [x for x in labels if x in {g.name for g in groups}]
    left = len(groups) - len(shown)
    title = ax.get_title(loc='left')
    assert f'first {len(shown)} of {len(groups)} groups shown' in title
    assert f'{left} groups, {sum(len(g.members) for g in groups[len(shown):])} members' in title
    assert len(_split_labels(ax)) == len(shown)
    # with the default limit this scenario fits: nothing left out
    assert 'left out' not in build_figure([run]).axes[0].get_title(loc='left')


def test_one_big_group_is_cut_to_its_first_members(runs):
    fig = build_figure(runs[:1], max_rows=2)
    (ax,) = fig.axes
    group = runs[0].scenario.groups[0]
    assert len(ax.get_yticklabels()) == 3
    assert f'first 2 of {len(group.members)} members of {group.name} shown' in ax.get_title(
        loc='left')


# -- the table ---------------------------------------------------------------------------


def _num(x: float, digits: int) -> str:
    return 'inf' if math.isinf(x) else f'{x:.{digits}f}'


def _ratio(a: float, b: float) -> str:
    return '-' if b <= 0 or math.isinf(b) else _num(a / b, 2)


def test_comparison_table_rows_and_ratios(runs):
    text = format_comparison(runs)
    lines = text.splitlines()
    assert len(lines) == 2 + len(runs)
    assert lines[0].split()[0] == 'strategy'
    assert 'split/parallel' in lines[0] and 'makespan/parallel' in lines[0]
    assert set(lines[1]) <= {'-', ' '}
    par = next(r.summary for r in runs if r.strategy == 'parallel')
    for line, run in zip(lines[2:], runs, strict=True):
        s = run.summary
        assert line.split() == [
            run.strategy,
            _num(s['split_time_s'], 1),
            _num(s['makespan_s'], 1),
            _num(s['eviction_time_s'], 1),
            _num(s['wan_mib'] / 1024, 1),
            _num(s['split_traffic_mib'] / 1024, 2),
            _num(s['max_downtime_s'] * 1000, 0),
            _ratio(s['makespan_s'], run.lower_bound_s),
            _ratio(s['split_time_s'], par['split_time_s']),
            _ratio(s['makespan_s'], par['makespan_s']),
        ]
    # the parallel run is its own reference
    assert lines[2 + STRATEGIES.index('parallel')].split()[-2:] == ['1.00', '1.00']


def test_comparison_table_columns_are_aligned(runs):
    lines = format_comparison(runs).splitlines()
    assert len({len(line) for line in lines}) == 1
    # every column ends at the same offset on every line (numbers right-aligned)
    rule = lines[1]
    ends = [i for i in range(len(rule)) if rule[i] == '-' and (i + 1 == len(rule)
                                                              or rule[i + 1] == ' ')]
    for line in lines[2:]:
        for end in ends[1:]:
            assert line[end] != ' '
            assert end + 1 == len(line) or line[end + 1] == ' '


def test_comparison_without_parallel_has_no_ratio_to_it(runs):
    text = format_comparison([r for r in runs if r.strategy != 'parallel'])
    assert 'parallel' not in text
    lines = text.splitlines()
    assert len(lines) == 2 + len(runs) - 1
    assert lines[0].split()[-1] == 'makespan/LB'
