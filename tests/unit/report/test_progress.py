"""The live progress view: log lines on a pipe, an in-place redraw on a terminal."""

from __future__ import annotations

import io
import re

import pytest

from slm_plugin.control import cloud as api
from slm_plugin.report.progress import ProgressView
from slm_plugin.scenario import loader

CURSOR_UP = re.compile(r'\x1b\[(\d+)F')


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(scope='module')
def scenario():
    return loader.load_shipped('database-heavy')


@pytest.fixture
def names(scenario):
    return [m.name for m in scenario.members()]


def progress(member, status, now, memory_remaining=1000.0, rnd=0, switchover_at=None):
    return api.Progress(
        member=member, status=status, disk_remaining_mib=0.0,
        memory_remaining_mib=memory_remaining, round=rnd, wire_mib=100.0,
        throughput_mibps=50.0, dirty_rate_mibps=None, started_at=0.0,
        switchover_at=switchover_at, downtime_s=0.08 if switchover_at is not None else None)


def states(names, now, status, **kwargs):
    return {n: progress(n, status, now, **kwargs) for n in names}


# -- not a terminal -----------------------------------------------------------------------


def test_a_pipe_gets_a_line_per_status_change(scenario, names):
    out = io.StringIO()
    view = ProgressView(scenario, names, stream=out, every_s=60.0)
    assert not view.tty
    view(0.0, {})
    # only the group line: nothing has started
    assert len(out.getvalue().splitlines()) == 1
    assert out.getvalue().startswith('t=')

    first = names[0]
    view(1.0, {first: progress(first, api.MIGRATING, 1.0)})
    view(2.0, {first: progress(first, api.MIGRATING, 2.0, memory_remaining=500.0)})
    view(3.0, {first: progress(first, api.HELD, 3.0, rnd=2)})
    view(4.0, {first: progress(first, api.HELD, 4.0, rnd=3)})
    lines = out.getvalue().splitlines()
    member_lines = [line for line in lines if line.split()[0] == first]
    # migrating once, held once, however often it is reported
    assert len(member_lines) == 2
    assert 'migrating' in member_lines[0] and member_lines[0].endswith('(t=1.0 s)')
    assert 'held' in member_lines[1] and member_lines[1].endswith('(t=3.0 s)')
    # no ANSI escapes on a pipe
    assert '\x1b' not in out.getvalue()


def test_a_pipe_gets_a_group_line_at_most_every_every_s(scenario, names):
    out = io.StringIO()
    view = ProgressView(scenario, names, stream=out, every_s=60.0)
    running = states(names, 0.0, api.MIGRATING)
    times = [0.0, 1.0, 30.0, 59.0, 60.0, 61.0, 119.0, 120.5, 121.0]
    for now in times:
        view(now, running)
    group = [line for line in out.getvalue().splitlines() if line.startswith('t=')]
    assert len(group) == 3
    stamps = [float(line.split('=')[1].split()[0]) for line in group]
    assert stamps == [0.0, 60.0, 120.5]
    assert all(b - a >= 60.0 for a, b in zip(stamps, stamps[1:], strict=False))
    assert f'{len(names)}/{len(names)} started' in group[-1]


def test_close_writes_the_final_group_line(scenario, names):
    out = io.StringIO()
    view = ProgressView(scenario, names, stream=out, every_s=60.0)
    view(0.0, states(names, 0.0, api.MIGRATING))
    done = states(names, 10.0, api.COMPLETED, switchover_at=9.5)
    done[names[0]] = progress(names[0], api.COMPLETED, 10.0, switchover_at=9.0)
    view.close(10.0, done)
    lines = out.getvalue().splitlines()
    assert lines[-1].startswith('t=   10.0 s')
    assert f'{len(names)} switched over' in lines[-1]
    assert 'split so far 0.50 s' in lines[-1]
    for n in names:
        assert any(line.split()[0] == n and 'switched over at' in line for line in lines)


# -- a terminal ---------------------------------------------------------------------------


def test_a_terminal_is_redrawn_in_place_with_a_line_per_member(scenario, names):
    out = FakeTTY()
    view = ProgressView(scenario, names, stream=out)
    assert view.tty
    drawn = len(names) + 1

    view(0.0, {})
    first = out.getvalue()
    assert not CURSOR_UP.search(first)
    lines = first.split('\n')[:-1]
    assert len(lines) == drawn
    assert lines[0].startswith('t=')
    for name, line in zip(names, lines[1:], strict=True):
        assert line.split()[0] == name and 'queued' in line

    for i, now in enumerate([1.0, 2.0, 3.0], start=2):
        before = len(out.getvalue())
        view(now, states(names, now, api.MIGRATING, memory_remaining=2000.0 / i))
        draw = out.getvalue()[before:]
        # from the second draw on: back up over the previous frame, then draw a new one
        assert CURSOR_UP.match(draw), repr(draw[:20])
        assert int(CURSOR_UP.match(draw).group(1)) == drawn
        body = CURSOR_UP.sub('', draw)
        frame = body.split('\n')[:-1]
        assert len(frame) == drawn
        assert all(line.endswith('\x1b[K') for line in frame)  # clears leftovers
        assert frame[0].startswith(f't={now:7.1f} s')
        for name, line in zip(names, frame[1:], strict=True):
            assert line.split()[0] == name and 'migrating' in line
    assert len(CURSOR_UP.findall(out.getvalue())) == 3


def test_a_terminal_shows_the_bar_filling(scenario, names):
    out = FakeTTY()
    view = ProgressView(scenario, names, stream=out)
    name = names[0]
    memory = next(m.vm.memory_mib for m in scenario.members() if m.name == name)
    view(1.0, {name: progress(name, api.MIGRATING, 1.0, memory_remaining=memory)})
    view(2.0, {name: progress(name, api.MIGRATING, 2.0, memory_remaining=memory / 2)})
    view(3.0, {name: progress(name, api.COMPLETED, 3.0, switchover_at=2.5)})
    frames = CURSOR_UP.split(out.getvalue())
    bars = [re.search(r'\[([#.]+)\]', line).group(1)
            for frame in frames if not frame.isdigit()
            for line in frame.split('\n') if line.split() and line.split()[0] == name]
    assert [b.count('#') for b in bars] == [0, 12, 24]
    assert 'switched over at 2.5 s' in frames[-1]
