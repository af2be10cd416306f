"""``--complete-by`` and ``--not-before``: what the command line takes, and what it sends."""

import datetime

import pytest
from osc_lib import exceptions

from slm_plugin.osc.v1.group_migration import instant, schedule_text

NOW = datetime.datetime(2026, 12, 3, 12, 0, 0, tzinfo=datetime.UTC)


@pytest.mark.parametrize('text, sent', [
    ('+90s', '2026-12-03T12:01:30Z'),
    ('+30m', '2026-12-03T12:30:00Z'),
    ('+1.5h', '2026-12-03T13:30:00Z'),
    ('+1d', '2026-12-04T12:00:00Z'),
    ('2026-12-03T18:00:00Z', '2026-12-03T18:00:00Z'),
    ('2026-12-03T18:00:00', '2026-12-03T18:00:00Z'),  # UTC unless it says
    ('2026-12-03T19:00:00+01:00', '2026-12-03T18:00:00Z'),
])
def test_instants_are_sent_as_utc(text, sent):
    assert instant(text, '--complete-by', now=NOW) == sent


@pytest.mark.parametrize('text', ['tomorrow', '+5', '30m', '-5m', '2026-12-33'])
def test_a_bad_instant_names_the_option_and_the_forms(text):
    with pytest.raises(exceptions.CommandError, match=r'--not-before .*: give an ISO 8601 '
                                                      r'instant .* or a time from now'):
        instant(text, '--not-before', now=NOW)


def test_the_schedule_line_says_the_start_and_the_margin():
    line = schedule_text({'start_at': '2026-12-03T17:50:00.000Z',
                          'predicted_end_at': '2026-12-03T17:55:00.000Z', 'margin_s': 300.0,
                          'complete_by': '2026-12-03T18:00:00.000Z', 'reduced_margin': True})
    assert line.startswith('It would start at 2026-12-03T17:50:00.000Z and switch over at '
                           '2026-12-03T17:55:00.000Z, 300 s before its deadline '
                           '2026-12-03T18:00:00.000Z (less margin')
    assert schedule_text({'start_at': 'a', 'predicted_end_at': 'b'}) == \
        'It would start at a and switch over at b.'
