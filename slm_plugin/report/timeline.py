"""Compare strategies on one scenario: a timeline figure and a plain-text table.

:func:`write_timeline` draws one panel per run, one bar per member from the
start of its migration to its finish. Inside a bar, the disk phase (block
migration, before the first memory round) has its own colour, round 0 (the
bulk pass) is dark and later pre-copy rounds alternate two light shades; the
post-copy tail (switchover to finish) is hatched and a black tick marks each
switchover. A translucent band over each server group runs from its first to
its last switchover: the time the group runs split between the sites.

:func:`format_comparison` tabulates the same runs' figures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.legend_handler import HandlerTuple
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from slm_plugin.control import cloud as api
from slm_plugin.simulation.cloud import MemberResult
from slm_plugin.simulation.metrics import GroupMetrics
from slm_plugin.simulation.runner import Run

MAX_ROWS = 40  # member rows per panel; further groups are left out
DPI = 110
WIDTH_IN = 12.0
ROW_IN = 0.2  # figure height per row
_PANEL_EXTRA_IN = 0.55  # title and padding of one panel
_FIGURE_EXTRA_IN = 1.2  # suptitle, legend and the x axis label

_GAVE_UP = (api.ABORTED, api.FAILED)

_BAR_H = 0.64
_TICK_H = 0.86
_EPS = 1e-6

DISK = '#b8860b'
ROUND0 = '#1f5a96'
ROUND_ODD = '#6baed6'
ROUND_EVEN = '#b3d4ec'
POSTCOPY_FACE = '#fdd9b5'
POSTCOPY_HATCH = '#d9480f'
SWITCHOVER = 'black'
SPLIT = '#d62728'
LOWER_BOUND = '0.4'
GAVE_UP = '#b10026'

MIB_PER_GIB = 1024.0


# -- figure ------------------------------------------------------------------------


def write_timeline(runs: Sequence[Run], path) -> Path:
    """Draw ``runs`` (strategies on the same scenario) into the PNG ``path``.

    The same runs give a byte-identical file: no timestamp or software tag
    is written into the PNG.
    """
    fig = build_figure(runs)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format='png', dpi=DPI, metadata={'Software': None})
    return path


def build_figure(runs: Sequence[Run], max_rows: int = MAX_ROWS) -> Figure:
    """The timeline :class:`Figure`: one panel (Axes) per run, top to bottom."""
    runs = list(runs)
    if not runs:
        raise ValueError('a timeline needs at least one run')
    layouts = [_layout(run, max_rows) for run in runs]
    height = (sum(len(lay.rows) * ROW_IN + _PANEL_EXTRA_IN for lay in layouts)
              + _FIGURE_EXTRA_IN)
    fig = Figure(figsize=(WIDTH_IN, height), dpi=DPI, layout='constrained')
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(runs), 1, sharex=True, squeeze=False,
                        height_ratios=[len(lay.rows) + 2.5 for lay in layouts])[:, 0]
    x_end = max(_run_end(run) for run in runs)
    for ax, run, lay in zip(axes, runs, layouts, strict=True):
        _draw_panel(ax, run, lay, x_end)
    axes[-1].set_xlim(0.0, x_end * 1.02 if x_end > 0 else 1.0)
    axes[-1].set_xlabel('time since the request (s)')
    names = list(dict.fromkeys(run.scenario.name for run in runs))
    fig.suptitle(f"{' / '.join(names)}: live migration timeline by strategy", fontsize=12)
    gave_up = any(r.status in _GAVE_UP and r.switchover_s is None
                  for run in runs for r in run.results)
    handles = _legend_handles(gave_up)
    fig.legend(handles=handles, labels=[h.get_label() for h in handles],
               handler_map={_Alternating: HandlerTuple(ndivide=None, pad=0.0)},
               loc='outside lower center', ncols=len(handles), fontsize=8, frameon=False,
               handlelength=2.0, columnspacing=1.6)
    return fig


def split_label(split_s: float) -> str:
    """The text on a group's split band."""
    if not math.isfinite(split_s):
        return 'split: not all resumed'
    return f'split {split_s:.1f} s'


def panel_title(run: Run, hidden: str = '') -> str:
    s = run.summary
    title = (f"{run.strategy}: split {_secs(s['split_time_s'])}, "
             f"makespan {_secs(s['makespan_s'])}, "
             f"WAN {_fmt(s['wan_mib'] / MIB_PER_GIB, 1)} GiB, "
             f"max downtime {_fmt(s['max_downtime_s'] * 1000.0, 0)} ms")
    if not all(g.all_resumed for g in run.groups):
        title += '; not all resumed'
    if run.outcome.status != 'completed':
        title += f' [{run.outcome.status}]'
    if hidden:
        title += f'\n({hidden})'
    return title


@dataclass(frozen=True, slots=True)
class _Row:
    label: str
    header: bool
    result: MemberResult | None = None


@dataclass(frozen=True, slots=True)
class _GroupSpan:
    metrics: GroupMetrics | None
    header_y: int
    last_y: int
    switchovers: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class _Layout:
    rows: tuple[_Row, ...]
    spans: tuple[_GroupSpan, ...]
    hidden: str  # what was left out, for the title


def _layout(run: Run, max_rows: int) -> _Layout:
    """Rows top to bottom: per group a header row, then its members in scenario order."""
    by_member = {r.member: r for r in run.results}
    metrics = {g.name: g for g in run.groups}
    moving = set(run.scenario.request.groups) or {g.name for g in run.scenario.groups}
    started = {r.group for r in run.results}
    groups = [g for g in run.scenario.groups if g.name in moving or g.name in started]
    rows: list[_Row] = []
    spans: list[_GroupSpan] = []
    used = 0
    hidden = ''
    for i, group in enumerate(groups):
        members = list(group.members)
        if used + len(members) > max_rows:
            if used:
                left = groups[i:]
                n = sum(len(g.members) for g in left)
                hidden = (f"first {i} of {len(groups)} groups shown; "
                          f"{len(left)} group{'s' if len(left) != 1 else ''}, "
                          f"{n} member{'s' if n != 1 else ''} left out")
                break
            hidden = (f'first {max_rows} of {len(members)} members of {group.name} shown; '
                      f'{len(members) - max_rows} members'
                      + (f' and {len(groups) - 1} more groups' if len(groups) > 1 else '')
                      + ' left out')
            members = members[:max_rows]
        header_y = len(rows)
        rows.append(_Row(group.name, True))
        for m in members:
            r = by_member.get(m.name)
            label = m.name
            if r is None:
                label += ' (not started)'
            elif r.status != 'completed':
                label += f' ({r.status})'
            rows.append(_Row(label, False, r))
        used += len(members)
        # the band covers the whole group, shown or not
        switchovers = tuple(sorted(
            by_member[m.name].switchover_s for m in group.members
            if m.name in by_member and by_member[m.name].switchover_s is not None))
        spans.append(_GroupSpan(metrics.get(group.name), header_y, len(rows) - 1, switchovers))
        if hidden:
            break
    return _Layout(tuple(rows), tuple(spans), hidden)


def _run_end(run: Run) -> float:
    ends = [run.outcome.finished_at]
    for r in run.results:
        ends.extend(t for t in (r.finish_s, r.switchover_s) if t is not None)
        ends.extend(t for t, _ in r.rounds)
    return max(t for t in ends if math.isfinite(t))


def _stopped(r: MemberResult, end: float) -> float:
    """When the member's bar ends: its finish, or for one still under way the run's end.

    An aborted or failed migration does not record when it stopped; its last
    change of rate or round is the best estimate.
    """
    if r.finish_s is not None:
        return r.finish_s
    if r.status in _GAVE_UP and r.switchover_s is None:
        return max([r.start_s, *(t for t, _ in r.rounds), *(t for t, _ in r.rate_history)])
    return end


def _segments(r: MemberResult, end: float) -> dict[str, list[tuple[float, float]]]:
    """(start, width) of each phase of one member's bar, keyed by style."""
    out: dict[str, list[tuple[float, float]]] = {
        'disk': [], 'round0': [], 'odd': [], 'even': [], 'postcopy': []}
    stop = _stopped(r, end)
    precopy_end = r.switchover_s if r.switchover_s is not None else stop
    first = r.rounds[0][0] if r.rounds else precopy_end
    if first > r.start_s + _EPS:
        out['disk'].append((r.start_s, first - r.start_s))
    for i, (t0, _) in enumerate(r.rounds):
        t1 = r.rounds[i + 1][0] if i + 1 < len(r.rounds) else precopy_end
        if t1 > t0:
            key = 'round0' if i == 0 else 'odd' if i % 2 else 'even'
            out[key].append((t0, t1 - t0))
    if r.switchover_s is not None and stop > r.switchover_s + _EPS:
        out['postcopy'].append((r.switchover_s, stop - r.switchover_s))
    return out


_STYLES = {
    'disk': {'color': DISK},
    'round0': {'color': ROUND0},
    'odd': {'color': ROUND_ODD},
    'even': {'color': ROUND_EVEN},
    'postcopy': {'color': POSTCOPY_FACE, 'edgecolor': POSTCOPY_HATCH, 'hatch': '////',
                 'linewidth': 0.0},
}


def _draw_panel(ax, run: Run, lay: _Layout, x_end: float) -> None:
    end = run.outcome.finished_at
    bars: dict[str, tuple[list[float], list[float], list[float]]] = {
        k: ([], [], []) for k in _STYLES}
    ticks: list[tuple[float, float]] = []
    crosses: list[tuple[float, float]] = []
    for y, row in enumerate(lay.rows):
        if row.result is None:
            continue
        for key, segs in _segments(row.result, end).items():
            for left, width in segs:
                bars[key][0].append(y)
                bars[key][1].append(width)
                bars[key][2].append(left)
        if row.result.switchover_s is not None:
            ticks.append((row.result.switchover_s, y))
        elif row.result.status in _GAVE_UP:
            crosses.append((_stopped(row.result, end), y))
    for key, (ys, widths, lefts) in bars.items():
        if ys:
            ax.barh(ys, widths, left=lefts, height=_BAR_H, zorder=2, **_STYLES[key])
    if ticks:
        ax.vlines([t for t, _ in ticks], [y - _TICK_H / 2 for _, y in ticks],
                  [y + _TICK_H / 2 for _, y in ticks], colors=SWITCHOVER, linewidth=1.6,
                  zorder=4, gid='switchover')
    if crosses:
        ax.plot([t for t, _ in crosses], [y for _, y in crosses], linestyle='none',
                marker='x', markersize=7, markeredgewidth=1.8, color=GAVE_UP, zorder=4)
    for span in lay.spans:
        _draw_split(ax, span, x_end)
    if run.lower_bound_s > 0:
        ax.axvline(run.lower_bound_s, color=LOWER_BOUND, linestyle=':', linewidth=1.0,
                   zorder=1)
    for span in lay.spans[1:]:
        ax.axhline(span.header_y - 0.5, color='0.75', linewidth=0.6, zorder=1)

    ax.set_ylim(len(lay.rows) - 0.5, -0.6)
    ax.set_yticks(range(len(lay.rows)), [row.label for row in lay.rows], fontsize=8)
    for label, row in zip(ax.get_yticklabels(), lay.rows, strict=True):
        if row.header:
            label.set_fontweight('bold')
    ax.tick_params(axis='y', length=0)
    ax.tick_params(axis='x', labelsize=8, labelbottom=True)
    ax.grid(axis='x', color='0.9', linewidth=0.6, zorder=0)
    ax.set_axisbelow(True)
    for side in ('top', 'right'):
        ax.spines[side].set_visible(False)
    ax.set_title(panel_title(run, lay.hidden), fontsize=10, loc='left')


def _draw_split(ax, span: _GroupSpan, x_end: float) -> None:
    split_s = span.metrics.split_time_s if span.metrics is not None else math.inf
    if not span.switchovers:
        ax.text(0.0, span.header_y, '  ' + split_label(split_s), va='center', ha='left',
                fontsize=8, color=SPLIT, gid='split-label', zorder=5)
        return
    x0 = span.switchovers[0]
    x1 = span.switchovers[-1] if math.isfinite(split_s) else x_end * 1.02
    top, bottom = span.header_y - 0.5, span.last_y + 0.5
    # behind the bars, so that their shades stay true; it shows between them
    ax.add_patch(Rectangle((x0, top), x1 - x0, bottom - top, facecolor=SPLIT, alpha=0.15,
                           edgecolor='none', zorder=1, gid='split-band'))
    ax.vlines([x0, x1], top, bottom, colors=SPLIT, linewidth=0.9, alpha=0.7, zorder=3)
    # centred on the band, unless that would push it out of the panel
    middle, room = (x0 + x1) / 2, 0.06 * x_end
    if middle > x_end - room:
        x, ha = x1 - 0.004 * x_end, 'right'
    elif middle < room:
        x, ha = x0 + 0.004 * x_end, 'left'
    else:
        x, ha = middle, 'center'
    ax.annotate(split_label(split_s), xy=(x, span.header_y),
                ha=ha, va='center', fontsize=8, color=SPLIT, fontweight='bold',
                gid='split-label', zorder=5,
                bbox={'boxstyle': 'round,pad=0.15', 'facecolor': 'white',
                      'edgecolor': 'none', 'alpha': 0.85})


class _Alternating(tuple):
    """A legend entry drawn as two patches side by side."""

    def __new__(cls, patches, label: str):
        self = super().__new__(cls, patches)
        self.label = label
        return self

    def get_label(self) -> str:
        return self.label


def _legend_handles(gave_up: bool) -> list:
    handles = [
        Patch(color=DISK, label='disk copy'),
        Patch(color=ROUND0, label='round 0 (bulk)'),
        _Alternating((Patch(color=ROUND_ODD), Patch(color=ROUND_EVEN)),
                     'later rounds (alternating)'),
        Patch(facecolor=POSTCOPY_FACE, edgecolor=POSTCOPY_HATCH, hatch='////', linewidth=0.0,
              label='post-copy'),
        Line2D([], [], color=SWITCHOVER, marker='|', linestyle='none', markersize=10,
               markeredgewidth=1.6, label='switchover'),
        Patch(facecolor=SPLIT, alpha=0.25, edgecolor='none', label='split (group)'),
        Line2D([], [], color=LOWER_BOUND, linestyle=':', label='makespan lower bound'),
    ]
    if gave_up:
        handles.insert(5, Line2D([], [], color=GAVE_UP, marker='x', linestyle='none',
                                 markersize=7, markeredgewidth=1.8, label='aborted / failed'))
    return handles


# -- table -------------------------------------------------------------------------


def format_comparison(runs: Sequence[Run]) -> str:
    """A plain-text table of the runs' figures, one row per run, columns aligned.

    Times in seconds with one decimal, traffic in GiB (WAN with one decimal,
    split traffic with two), max downtime in whole milliseconds, ratios with
    two decimals; an infinite figure reads ``inf``. When a ``parallel`` run is
    among them, every run's split and makespan are also given relative to the
    first one's; a ratio whose denominator is zero or not finite reads ``-``.
    """
    runs = list(runs)
    parallel = next((r.summary for r in runs if r.strategy == 'parallel'), None)
    header = ['strategy', 'split s', 'makespan s', 'eviction s', 'WAN GiB',
              'split traffic GiB', 'max downtime ms', 'makespan/LB']
    if parallel is not None:
        header += ['split/parallel', 'makespan/parallel']
    table = [header]
    for run in runs:
        s = run.summary
        row = [
            run.strategy,
            _fmt(s['split_time_s'], 1),
            _fmt(s['makespan_s'], 1),
            _fmt(s['eviction_time_s'], 1),
            _fmt(s['wan_mib'] / MIB_PER_GIB, 1),
            _fmt(s['split_traffic_mib'] / MIB_PER_GIB, 2),
            _fmt(s['max_downtime_s'] * 1000.0, 0),
            _ratio(s['makespan_s'], run.lower_bound_s),
        ]
        if parallel is not None:
            row += [_ratio(s['split_time_s'], parallel['split_time_s']),
                    _ratio(s['makespan_s'], parallel['makespan_s'])]
        table.append(row)
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return '  '.join(cell.ljust(w) if i == 0 else cell.rjust(w)
                         for i, (cell, w) in enumerate(zip(cells, widths, strict=True)))

    lines = [line(header), '  '.join('-' * w for w in widths)]
    lines += [line(row) for row in table[1:]]
    return '\n'.join(lines)


def _fmt(value: float, digits: int) -> str:
    if math.isnan(value):
        return 'nan'
    if math.isinf(value):
        return 'inf' if value > 0 else '-inf'
    return f'{value:.{digits}f}'


def _secs(value: float) -> str:
    return f'{value:.1f} s' if math.isfinite(value) else '\N{INFINITY}'


def _ratio(value: float, base: float) -> str:
    if not math.isfinite(base) or base <= 0:
        return '-'
    return _fmt(value / base, 2)
