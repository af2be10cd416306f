"""Following a group migration with ``--wait``: the group and each member, as they change.

On a terminal the display is a small table redrawn in place; otherwise (a
log file, a pipe, CI) one short line is written per change of the group's
status or of a member's state, so the output stays readable afterwards.
It goes to stderr: stdout keeps only the final job, so ``-f json`` stays
parseable.
"""

from __future__ import annotations

import collections
import os
import shutil
import time

FINAL_STATUSES = ('completed', 'failed', 'aborted')


def _clock(iso: str | None) -> str:
    """The time of day of an API timestamp (UTC), e.g. ``12:01:05.123Z``."""
    return iso[11:] if iso and len(iso) > 11 else '-'


def _size(n: int | None) -> str:
    if not n:
        return '0 B'
    for unit in ('B', 'KiB', 'MiB', 'GiB'):
        if n < 1024 or unit == 'GiB':
            return f'{n:.0f} {unit}' if unit == 'B' else f'{n:.1f} {unit}'
        n /= 1024
    return f'{n:.1f} TiB'


def _route(m: dict) -> str:
    if not m.get('destination_host'):
        return f"on {m.get('source_host') or '?'}"
    return f"{m.get('source_host') or '?'} -> {m['destination_host']}"


def member_detail(m: dict) -> str:
    """What is worth knowing about a member in its state."""
    state = m['state']
    if state == 'switched_over':
        downtime = m.get('downtime_ms')
        return (f"switched over at {_clock(m.get('switchover_at'))}, "
                f"downtime {downtime if downtime is not None else '?'} ms, "
                f"{_size(m.get('bytes_transferred'))} sent")
    if state in ('migrating', 'held'):
        # written every [engine] progress_interval while it runs
        sent = m.get('bytes_transferred') or 0
        left = m.get('remaining_bytes')
        text = f'{_size(sent)} sent, '
        if left is not None:
            text += f'{_size(left)} to go, '
        if m.get('iteration') is not None:
            text += 'copying disk, ' if m['iteration'] < 0 else f"pass {m['iteration'] + 1}, "
        return f"{text}predicted switchover {_clock(m.get('predicted_switchover_at'))}"
    if state == 'unknown':
        return (f"last seen migrating at {_clock(m.get('progress_at'))}; ask the cloud "
                'where it is')
    return ''


def _group(job: dict) -> str:
    return (job.get('group') or {}).get('name') or (job.get('group') or {}).get('id')


def _counts(job: dict) -> str:
    """How many members switched over, and how close together."""
    sw = job.get('switchover') or {}
    text = (f"{sw.get('switched_over', 0)}/{sw.get('members', len(job.get('members', ())))} "
            'switched over')
    if sw.get('spread_s') is not None and sw.get('switched_over', 0) > 1:
        text += f" within {sw['spread_s']:.3f} s"
    return text


def job_summary(job: dict) -> str:
    """One line on the whole group: its status, how many switched over, and how close;
    while it runs, how far it is and when it is expected to switch over."""
    line = f"Migration {job['id']} of group {_group(job)}: {job['status']}, {_counts(job)}"
    sw = job.get('switchover') or {}
    schedule = job.get('schedule') or {}
    if job['status'] == 'pending' and schedule.get('start_at'):
        line += f", starts at {_clock(schedule['start_at'])}"
    if schedule.get('complete_by') and job['status'] in ('pending', 'planning', 'running'):
        line += f", deadline {_clock(schedule['complete_by'])}"
    if job['status'] == 'running' and sw.get('progress') is not None:
        line += f", {100 * sw['progress']:.0f} % done"
        if sw.get('eta_at'):
            line += f", switchover expected at {_clock(sw['eta_at'])}"
    if job.get('error'):
        line += f": {job['error']}"
    return line


class ChangeLines:
    """One line per change: the group's status, a member's state."""

    def __init__(self, stream):
        self.stream = stream
        self._status = None
        self._states: dict[str, str] = {}

    def update(self, job: dict) -> None:
        lines = []
        for m in job.get('members', ()):
            if self._states.get(m['name']) != m['state']:
                self._states[m['name']] = m['state']
                detail = member_detail(m)
                lines.append(f"  {m['name']}: {m['state']} {_route(m)}"
                             + (f', {detail}' if detail else ''))
        if job['status'] != self._status:
            self._status = job['status']
            # the group's final word comes after its members'
            if job['status'] in FINAL_STATUSES:
                lines.append(job_summary(job))
            else:
                lines.insert(0, job_summary(job))
        if lines:
            self.stream.write('\n'.join(lines) + '\n')
            self.stream.flush()


class LiveTable:
    """The group and its members, redrawn in place on a terminal."""

    def __init__(self, stream, clock=time.monotonic):
        self.stream = stream
        self._drawn = 0
        self._clock = clock
        self._since = clock()

    def render(self, job: dict) -> list[str]:
        members = job.get('members', ())
        name_w = max((len(m['name']) for m in members), default=4)
        state_w = max((len(m['state']) for m in members), default=5)
        route_w = max((len(_route(m)) for m in members), default=6)
        waited = int(self._clock() - self._since)
        # the id last: on a narrow terminal it is what is cut
        lines = [f"Group {_group(job)}: {job['status']}, {_counts(job)} "
                 f"[{waited // 60:02d}:{waited % 60:02d}], migration {job['id']}"]
        if job.get('error'):
            lines.append(f"  error: {job['error']}")
        lines += [f"  {m['name']:<{name_w}}  {m['state']:<{state_w}}  "
                  f'{_route(m):<{route_w}}  {member_detail(m)}'.rstrip()
                  for m in members]
        return lines

    def _size(self) -> tuple[int, int]:
        try:
            size = os.get_terminal_size(self.stream.fileno())
        except (AttributeError, ValueError, OSError):
            size = shutil.get_terminal_size()
        return size.columns or 80, size.lines or 24

    def update(self, job: dict) -> None:
        columns, rows = self._size()
        lines = self.render(job)
        fits = max(rows - 1, 3)  # a cursor cannot go back above the screen's top
        if len(lines) > fits:
            hidden = collections.Counter(m['state'] for m in job['members'][-(len(lines) - fits
                                                                              + 1):])
            lines = lines[:fits - 1] + [f'  ... and {sum(hidden.values())} more: ' + ', '.join(
                f'{n} {state}' for state, n in sorted(hidden.items()))]
        lines = [line[:max(columns - 1, 20)] for line in lines]
        if self._drawn:
            # back to the first line drawn, and clear everything below it
            self.stream.write(f'\x1b[{self._drawn}F\x1b[J')
        self.stream.write('\n'.join(lines) + '\n')
        self.stream.flush()
        self._drawn = len(lines)


def display_for(stream):
    isatty = getattr(stream, 'isatty', None)
    return LiveTable(stream) if isatty is not None and isatty() else ChangeLines(stream)


def follow(get_job, job_id: str, display, interval: float = 1.0, sleep=time.sleep) -> dict:
    """Poll the job and show it until it ends; the job as it ended."""
    while True:
        job = get_job(job_id)
        display.update(job)
        if job['status'] in FINAL_STATUSES:
            return job
        sleep(interval)
