"""What `openstack server group migrate --wait` says about each member."""

from slm_plugin.osc.v1.progress import ChangeLines, job_summary, member_detail

GIB = 1024 ** 3


def member(**values):
    base = {'name': 'vm1', 'state': 'migrating', 'source_host': 'a1',
            'destination_host': 'b1', 'predicted_switchover_at': '2026-11-22T05:40:01.250Z'}
    return dict(base, **values)


def test_a_migrating_member_shows_bytes_sent_and_to_go_and_its_pass():
    text = member_detail(member(bytes_transferred=GIB, remaining_bytes=GIB // 2, iteration=1))
    assert text == '1.0 GiB sent, 512.0 MiB to go, pass 2, predicted switchover 05:40:01.250Z'


def test_a_member_copying_its_disk_says_so():
    text = member_detail(member(bytes_transferred=3 * 1024, remaining_bytes=GIB, iteration=-1))
    assert text.startswith('3.0 KiB sent, 1.0 GiB to go, copying disk, ')


def test_a_member_not_yet_seen_moving_shows_nothing_sent():
    text = member_detail(member(bytes_transferred=0, remaining_bytes=None, iteration=None))
    assert text == '0 B sent, predicted switchover 05:40:01.250Z'


def test_a_switched_over_member_shows_its_downtime():
    text = member_detail(member(state='switched_over', switchover_at='2026-11-22T05:40:02.5Z',
                                downtime_ms=80, bytes_transferred=2 * GIB))
    assert text == 'switched over at 05:40:02.5Z, downtime 80 ms, 2.0 GiB sent'


def test_change_lines_write_one_line_per_state_change(tmp_path):
    out = (tmp_path / 'log').open('w+')
    lines = ChangeLines(out)
    job = {'id': 'j1', 'group': {'name': 'web'}, 'status': 'running',
           'members': [member(bytes_transferred=1, remaining_bytes=1, iteration=0)]}
    lines.update(job)
    lines.update(job)  # nothing changed: nothing written
    job['members'][0].update(state='switched_over', downtime_ms=5, switchover_at='x' * 20)
    lines.update(job)
    out.seek(0)
    written = out.read().splitlines()
    assert len(written) == 3, written
    assert written[0].startswith('Migration j1 of group web: running')
    assert written[1].startswith('  vm1: migrating a1 -> b1, 1 B sent, 1 B to go, pass 1')
    assert written[2].startswith('  vm1: switched_over a1 -> b1, switched over at')


def test_a_running_job_says_how_far_it_is_and_when_it_is_expected():
    job = {'id': 'j1', 'group': {'name': 'web'}, 'status': 'running',
           'switchover': {'switched_over': 1, 'members': 3, 'progress': 0.4567,
                          'eta_at': '2026-11-22T05:41:10.250Z', 'done': False}}
    assert job_summary(job) == ('Migration j1 of group web: running, 1/3 switched over, '
                                '46 % done, switchover expected at 05:41:10.250Z')
    job['status'] = 'completed'
    assert '% done' not in job_summary(job)


def test_a_job_with_a_window_says_when_it_starts_and_its_deadline():
    job = {'id': 'j1', 'group': {'name': 'web'}, 'status': 'pending',
           'schedule': {'start_at': '2026-12-03T17:50:00.000Z',
                        'complete_by': '2026-12-03T18:00:00.000Z'},
           'switchover': {'switched_over': 0, 'members': 3, 'done': False}}
    assert job_summary(job) == ('Migration j1 of group web: pending, 0/3 switched over, '
                                'starts at 17:50:00.000Z, deadline 18:00:00.000Z')
    job['status'] = 'completed'
    assert 'deadline' not in job_summary(job) and 'starts at' not in job_summary(job)
