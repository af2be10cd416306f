"""slm-demo end to end: the live log, the SQLite job record, the table and the picture."""

from __future__ import annotations

import contextlib
import io

import pytest

from slm_plugin.cmd import demo
from slm_plugin.context import get_admin_context
from slm_plugin.db import api as db
from slm_plugin.db import states
from slm_plugin.scenario import loader

pytestmark = [pytest.mark.functional, pytest.mark.timeout(120)]

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
MIB = 1024 * 1024
SCENARIO = 'database-heavy'


@pytest.fixture(scope='module')
def demo_run(tmp_path_factory):
    """One run of slm-demo for the module: (exit status, stdout, stderr, output dir)."""
    out = tmp_path_factory.mktemp('slm-demo')
    # capsys is per test; the demo runs once for all of them, into StringIO (not a TTY)
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        status = demo.main(['--output-dir', str(out), '--speed', '0', '--scenario', SCENARIO])
    return status, stdout.getvalue(), stderr.getvalue(), out


@pytest.fixture(scope='module')
def record(demo_run):
    """The jobs, members and events the demo left in its SQLite file."""
    _, _, _, out = demo_run
    manager = db.create_context_manager(f"sqlite:///{out / 'slm.sqlite'}")
    ctxt = get_admin_context(db_connection=manager)
    try:
        jobs = db.list_jobs(ctxt)
        members = {job.id: db.list_members(ctxt, job.id) for job in jobs}
        events = {job.id: db.list_events(ctxt, job.id) for job in jobs}
    finally:
        manager.dispose_pool()
    return jobs, members, events


def test_exits_0(demo_run):
    status, _, err, _ = demo_run
    assert status == 0, err


def test_the_timeline_picture_is_a_png(demo_run):
    _, stdout, _, out = demo_run
    picture = out / 'timeline.png'
    assert picture.read_bytes()[:8] == PNG_SIGNATURE
    assert f'Timeline picture: {picture}' in stdout


def test_the_job_is_recorded_as_completed(record):
    jobs, _, _ = record
    assert len(jobs) == 1
    job = jobs[0]
    assert job.status == states.COMPLETED
    assert job.strategy == 'synchronized'
    assert job.request == {'scenario': SCENARIO, 'strategy': 'synchronized'}


def test_every_member_switched_over_within_the_split(record):
    jobs, members, _ = record
    rows = members[jobs[0].id]
    scenario = loader.load_shipped(SCENARIO)
    memory = {m.name: m.vm.memory_mib for m in scenario.members()}
    assert sorted(m.server_id for m in rows) == sorted(memory)
    for m in rows:
        assert m.state == states.SWITCHED_OVER
        assert m.started_at is not None and m.switchover_at is not None
        assert m.switchover_at > m.started_at
        assert m.bytes_transferred > memory[m.server_id] * MIB
        assert m.downtime_ms is not None and m.downtime_ms >= 0
    switch = [m.switchover_at for m in rows]
    assert (max(switch) - min(switch)).total_seconds() < 1.0


def test_the_events_tell_the_story_in_order(record):
    jobs, members, events = record
    evs = events[jobs[0].id]
    kinds = [e.kind for e in evs]
    assert kinds[0] == 'job.started'
    assert kinds[-1] == 'job.completed'
    assert [e.at for e in evs] == sorted(e.at for e in evs)
    rows = members[jobs[0].id]
    for m in rows:
        mine = [e.kind for e in evs if e.member_id == m.id]
        assert mine[0] == 'member.migrating' and mine[-1] == 'member.switched_over'
    assert kinds.count('member.switched_over') == len(rows)


def test_stdout_has_the_log_and_the_comparison(demo_run):
    _, stdout, _, out = demo_run
    lines = stdout.splitlines()
    # not a terminal: the live view logs lines, no escape sequences
    assert '\x1b[' not in stdout
    assert any(line.startswith('t=') for line in lines)
    for strategy in ('synchronized', 'parallel', 'sequential'):
        rows = [line for line in lines if line.split()[:1] == [strategy]]
        assert rows, strategy
        assert all(len(line.split()) >= 8 for line in rows)
    assert f"Job record: {out / 'slm.sqlite'}" in stdout


def test_bad_input_exits_2_and_creates_no_database(tmp_path, capsys):
    out = tmp_path / 'demo'
    status = demo.main(['--output-dir', str(out), '--speed', '0', '--scenario', 'nope'])
    captured = capsys.readouterr()
    assert status == 2
    assert captured.out == ''
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: ') and "'nope'" in lines[0]
    assert not (out / 'slm.sqlite').exists()
    assert not out.exists()
