"""A live progress view of a group migration for a terminal.

On a terminal it redraws one line per member and one for the group in place;
elsewhere (a log, a pipe) it prints a line when a member changes state and a
summary line now and then, so the output stays readable.
"""

from __future__ import annotations

import sys
import time

from slm_plugin.control import cloud as api
from slm_plugin.scenario.model import Scenario

BAR = 24


class ProgressView:
    def __init__(self, scenario: Scenario, members: list[str], speed: float = 0.0,
                 stream=None, every_s: float = 60.0):
        """``speed``: simulated seconds per wall second (0: as fast as possible)."""
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self.members = members
        self.memory = {m.name: m.vm.memory_mib + m.vm.disk_mib for m in scenario.members()}
        self.speed = speed
        self.every_s = every_s
        self._drawn = 0
        self._last_print = -float('inf')
        self._status: dict[str, str] = {}
        self._wall0 = time.monotonic()

    def __call__(self, now: float, progress: dict[str, api.Progress]) -> None:
        if self.speed > 0:
            lag = now / self.speed - (time.monotonic() - self._wall0)
            if lag > 0:
                time.sleep(lag)
        if self.tty:
            self._redraw(now, progress)
        else:
            self._log(now, progress)

    def close(self, now: float, progress: dict[str, api.Progress]) -> None:
        if self.tty:
            self._redraw(now, progress)
        else:
            self._log(now, progress, force=True)

    def _line(self, name: str, p: api.Progress | None) -> str:
        if p is None:
            return f"  {name:14} {'queued':14} {'':{BAR + 2}}"
        total = self.memory.get(name, 1.0)
        if p.status in api.RESUMED:
            done = 1.0
        elif p.round < 0:
            done = 0.5 * (1 - p.disk_remaining_mib / max(total, 1e-9))
        elif p.round == 0:
            done = 1 - p.memory_remaining_mib / max(total, 1e-9)
        else:
            done = 0.97
        filled = int(round(BAR * max(0.0, min(1.0, done))))
        where = f'round {p.round}' if p.round >= 0 else 'disk copy'
        extra = (f'{where:9} {p.throughput_mibps:7.1f} MiB/s' if p.status in (
            api.MIGRATING, api.HELD) else
            f'switched over at {p.switchover_at:.1f} s' if p.switchover_at is not None else '')
        return f"  {name:14} {p.status:14} [{'#' * filled}{'.' * (BAR - filled)}] {extra}"

    def _group_line(self, now: float, progress) -> str:
        resumed = [p.switchover_at for p in progress.values() if p.switchover_at is not None]
        held = sum(1 for p in progress.values() if p.status == api.HELD)
        split = (max(resumed) - min(resumed)) if resumed else 0.0
        return (f't={now:7.1f} s  {len(progress)}/{len(self.members)} started, {held} held, '
                f'{len(resumed)} switched over, split so far {split:.2f} s')

    def _redraw(self, now: float, progress) -> None:
        lines = [self._group_line(now, progress)]
        lines += [self._line(n, progress.get(n)) for n in self.members]
        if self._drawn:
            self.stream.write(f'\x1b[{self._drawn}F')
        self.stream.write(''.join(f'{line}\x1b[K\n' for line in lines))
        self.stream.flush()
        self._drawn = len(lines)

    def _log(self, now: float, progress, force: bool = False) -> None:
        for name in self.members:
            p = progress.get(name)
            if p is not None and self._status.get(name) != p.status:
                self._status[name] = p.status
                self.stream.write(self._line(name, p).rstrip() + f'   (t={now:.1f} s)\n')
        if force or now - self._last_print >= self.every_s:
            self._last_print = now
            self.stream.write(self._group_line(now, progress) + '\n')
        self.stream.flush()
