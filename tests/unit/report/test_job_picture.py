"""report.job_picture: a job's plan, and the plan against what happened, from the API's answers."""

import pytest
from matplotlib import image

from slm_plugin.report import job_picture

DRY_RUN = {
    'dry_run': True, 'group': {'id': 'g', 'name': 'web'}, 'strategy': 'synchronized',
    'plan': {'strategy': 'synchronized', 'members': [
        {'member': 'web-2', 'predicted_start_s': 0.0, 'predicted_switchover_s': 9.0},
        {'member': 'web-1', 'predicted_start_s': 0.0, 'predicted_switchover_s': 9.0}],
        'predicted': {'web-1': {'start_s': 0.0, 'switchover_s': 20.0},
                      'web-2': {'start_s': 4.0, 'switchover_s': 20.5}}},
}

SHOWN = {
    'group': {'name': 'web'}, 'strategy': 'parallel', 'status': 'completed',
    'plan': {'started_at': '2026-12-03T12:00:00.000Z', 'time_scale': 10.0},
    'members': [
        {'name': 'web-1', 'state': 'switched_over', 'predicted_start_s': 0.0,
         'predicted_switchover_s': 100.0, 'started_at': '2026-12-03T12:00:00.500Z',
         'switchover_at': '2026-12-03T12:00:11.000Z'},
        {'name': 'web-2', 'state': 'aborted', 'predicted_start_s': 20.0,
         'predicted_switchover_s': 120.0, 'started_at': '2026-12-03T12:00:02.000Z',
         'switchover_at': None},
        {'name': 'web-3', 'state': 'queued', 'predicted_start_s': 30.0,
         'predicted_switchover_s': 130.0, 'started_at': None, 'switchover_at': None},
    ],
}


def test_a_dry_run_reads_as_its_simulated_figures():
    rows = job_picture.rows(DRY_RUN)
    assert [r['name'] for r in rows] == ['web-1', 'web-2']  # in the order they start
    assert rows[1]['planned'] == (4.0, 20.5) and rows[1]['real'] is None


def test_a_job_reads_as_plan_in_wall_seconds_against_what_happened():
    rows = {r['name']: r for r in job_picture.rows(SHOWN)}
    assert rows['web-1']['planned'] == (0.0, 10.0)  # cloud seconds at ten times
    assert rows['web-1']['real'] == pytest.approx((0.5, 11.0))
    assert rows['web-2']['real'] == pytest.approx((2.0, None))  # never switched over
    assert rows['web-3']['real'] is None


@pytest.mark.parametrize('answer', [DRY_RUN, SHOWN])
def test_the_picture_is_a_png_a_row_per_member(tmp_path, answer):
    path = job_picture.write_job_picture(answer, tmp_path / 'sub' / 'web.png')
    pixels = image.imread(path)
    assert pixels.shape[0] > 150 and pixels.shape[1] == 1100
    # the same answer draws the same file
    again = job_picture.write_job_picture(answer, tmp_path / 'again.png')
    assert again.read_bytes() == path.read_bytes()


def test_an_answer_without_members_is_refused():
    with pytest.raises(ValueError, match='no members'):
        job_picture.write_job_picture({'plan': {}}, '/nonexistent/x.png')
