"""A picture of one job for a person: its plan, and the plan against what happened.

``openstack server group migrate --dry-run --timeline FILE`` and ``openstack
server group migration show --timeline FILE`` draw it from what the API
answers, so the client needs nothing the service has not said: one row per
member, a light bar from its predicted start to its predicted switchover, and
for a job that ran a dark bar from its real start to its real switchover
beneath; a tick marks each switchover, and a band over the rows shows the
span from the group's first to its last switchover (the time it ran split),
planned and real.

Times are seconds since the job started (for a dry run, since the request).
"""

from __future__ import annotations

import datetime
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

PLANNED = '#9ecae1'
REAL = '#1f5a96'
SWITCHOVER = 'black'
SPLIT_PLANNED = '#fdae6b'
SPLIT_REAL = '#d62728'
DPI = 110


def _instant(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    return datetime.datetime.fromisoformat(text.replace('Z', '+00:00'))


def rows(answer: dict) -> list[dict]:
    """Per member, in the order they are planned to start: name, planned (start, switchover)
    and real (start, switchover) in seconds since the job began; None where not known."""
    plan = answer.get('plan') or {}
    predicted = plan.get('predicted') or {}
    planned_rows = {m['member']: m for m in plan.get('members', ())}
    epoch = _instant(plan.get('started_at'))
    members = answer.get('members') or [{'name': name} for name in planned_rows]
    out = []
    for m in members:
        name = m['name']
        p = predicted.get(name) or {}
        row = planned_rows.get(name) or {}
        start = p.get('start_s', row.get('predicted_start_s', m.get('predicted_start_s')))
        switch = p.get('switchover_s', row.get('predicted_switchover_s',
                                               m.get('predicted_switchover_s')))
        scale = plan.get('time_scale') or 1.0
        planned = None if start is None or switch is None else (start / scale, switch / scale)
        real = None
        began, switched = _instant(m.get('started_at')), _instant(m.get('switchover_at'))
        if epoch is not None and began is not None:
            end = switched if switched is not None else None
            real = ((began - epoch).total_seconds(),
                    None if end is None else (end - epoch).total_seconds())
        out.append({'name': name, 'planned': planned, 'real': real,
                    'state': m.get('state')})
    return sorted(out, key=lambda r: (r['planned'] or (0.0, 0.0))[0])


def write_job_picture(answer: dict, path) -> Path:
    """Draw the job (or dry run) ``answer`` of the API into the PNG ``path``."""
    table = rows(answer)
    if not table:
        raise ValueError('the answer has no members to draw')
    fig = Figure(figsize=(10.0, 1.6 + 0.45 * len(table)), dpi=DPI, layout='constrained')
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ran = any(r['real'] for r in table)
    height = 0.36 if ran else 0.6
    planned_ends, real_ends = [], []
    for y, r in enumerate(table):
        if r['planned']:
            start, switch = r['planned']
            ax.barh(y - (height / 2 if ran else 0), switch - start, left=start, height=height,
                    color=PLANNED, zorder=2, label='planned' if y == 0 else None)
            ax.vlines(switch, y - height, y + (0 if ran else height / 2), colors=SWITCHOVER,
                      linewidth=1.2, zorder=3)
            planned_ends.append(switch)
        if r['real']:
            start, switch = r['real']
            width = (switch if switch is not None else start) - start
            ax.barh(y + height / 2, width, left=start, height=height, color=REAL, zorder=2,
                    label='real' if not real_ends and switch is not None else None)
            if switch is not None:
                ax.vlines(switch, y, y + height, colors=SWITCHOVER, linewidth=1.6, zorder=3)
                real_ends.append(switch)
        if ran and not (r['real'] and r['real'][1] is not None):
            # started and never switched over, or never started: say where it stands
            at = r['real'][0] if r['real'] else 0.0
            ax.text(at, y + height / 2, f"  {r['state'] or 'not started'}", va='center',
                    ha='left', fontsize=8, color=SPLIT_REAL, zorder=4)
    for ends, colour, what in ((planned_ends, SPLIT_PLANNED, 'planned'),
                               (real_ends, SPLIT_REAL, 'real')):
        if len(ends) > 1:
            ax.axvspan(min(ends), max(ends), color=colour, alpha=0.25, zorder=1,
                       label=f'{what} split {max(ends) - min(ends):.2f} s')
    ax.set_yticks(range(len(table)), [r['name'] for r in table], fontsize=9)
    ax.set_ylim(len(table) - 0.4, -0.6)
    ax.set_xlabel('seconds since the job started' if ran else 'seconds since the start')
    ax.grid(axis='x', color='0.9', linewidth=0.6, zorder=0)
    ax.set_axisbelow(True)
    for side in ('top', 'right'):
        ax.spines[side].set_visible(False)
    group = (answer.get('group') or {}).get('name') or ''
    what = 'plan against what happened' if ran else 'plan'
    ax.set_title(f"{group}: {answer.get('strategy') or ''} migration, {what}", loc='left',
                 fontsize=11)
    fig.legend(loc='outside lower center', ncols=4, fontsize=8, frameon=False)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format='png', dpi=DPI, metadata={'Software': None})
    return path
