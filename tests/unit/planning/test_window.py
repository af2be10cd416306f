"""planning.window: when a job with a deadline or a window starts."""

import pytest

from slm_plugin import exception
from slm_plugin.planning import window

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z


def test_a_deadline_starts_the_job_as_late_as_its_margin_allows():
    s = window.schedule(NOW, 400.0, complete_by=NOW + 3600, margin=0.25, min_margin_s=30)
    assert s.start_at == pytest.approx(NOW + 3600 - 400 - 100)
    assert s.predicted_end_at == pytest.approx(NOW + 3100)
    assert s.margin_s == pytest.approx(100) and not s.reduced_margin


def test_the_least_margin_holds_for_a_short_job():
    s = window.schedule(NOW, 20.0, complete_by=NOW + 600, margin=0.25, min_margin_s=30)
    assert s.margin_s == pytest.approx(30)
    assert s.start_at == pytest.approx(NOW + 550)


def test_a_short_window_starts_at_once_with_what_margin_there_is():
    s = window.schedule(NOW, 400.0, complete_by=NOW + 450, margin=0.25, min_margin_s=30)
    assert s.start_at == NOW and s.margin_s == pytest.approx(50) and s.reduced_margin


def test_the_window_opening_is_the_earliest_start():
    s = window.schedule(NOW, 60.0, not_before=NOW + 120)
    assert s.start_at == NOW + 120 and s.complete_by is None
    inside = window.schedule(NOW, 60.0, complete_by=NOW + 1000, not_before=NOW + 900)
    assert inside.start_at == NOW + 910 and not inside.reduced_margin
    late = window.schedule(NOW, 60.0, complete_by=NOW + 1000, not_before=NOW + 920)
    assert late.start_at == NOW + 920 and late.margin_s == 20 and late.reduced_margin
    # a window already open starts now
    assert window.schedule(NOW, 60.0, not_before=NOW - 50).start_at == NOW


def test_a_deadline_no_plan_meets_is_refused_with_the_earliest_switchover():
    with pytest.raises(exception.Invalid) as caught:
        window.schedule(NOW, 400.0, complete_by=NOW + 300)
    text = str(caught.value)
    assert text.startswith('Invalid input for field options.complete_by: no plan switches')
    assert f'earliest switchover is {window.iso(NOW + 400)} (starting now)' in text
    with pytest.raises(exception.Invalid, match='starting when the window opens'):
        window.schedule(NOW, 400.0, complete_by=NOW + 600, not_before=NOW + 300)


@pytest.mark.parametrize('complete_by, not_before, field', [
    (NOW - 1, None, 'options.complete_by: .* has passed'),
    (NOW, None, 'options.complete_by'),
    (NOW + 600, NOW + 600, 'options.not_before: the window opens at'),
    (NOW + 600, NOW + 900, 'options.not_before'),
])
def test_windows_that_cannot_be_are_refused_naming_the_field(complete_by, not_before, field):
    with pytest.raises(exception.Invalid, match=field):
        window.schedule(NOW, 10.0, complete_by=complete_by, not_before=not_before)


@pytest.mark.parametrize('text, expected', [
    ('2027-01-15T08:00:00Z', NOW),
    ('2027-01-15T08:00:00', NOW),  # no offset: UTC
    ('2027-01-15T09:30:00+01:30', NOW),
    ('2027-01-15 08:00:00.500Z', NOW + 0.5),
])
def test_instants_parse_as_iso_8601(text, expected):
    assert window.parse(text, 'options.complete_by') == pytest.approx(expected)


@pytest.mark.parametrize('text', ['tomorrow', '2027-13-45T00:00:00Z', '', None])
def test_a_bad_instant_names_the_field(text):
    with pytest.raises(exception.Invalid, match='options.not_before: .* not an ISO 8601'):
        window.parse(text, 'options.not_before')


def test_a_schedule_reads_back_as_the_api_writes_it():
    s = window.schedule(NOW, 400.0, complete_by=NOW + 3600)
    out = s.as_dict()
    assert out['complete_by'] == '2027-01-15T09:00:00.000Z'
    assert window.parse(out['start_at'], 'x') == pytest.approx(s.start_at, abs=0.001)
    assert out['margin_s'] == 100.0 and out['not_before'] is None
