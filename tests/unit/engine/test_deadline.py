"""engine.runner.Deadline: what a job with a deadline says as its predicted switchover moves."""

from slm_plugin.engine.runner import Deadline
from slm_plugin.planning import window

T = 1_800_000_000.0


def _deadline():
    return Deadline({'complete_by': window.iso(T + 100), 'predicted_end_at': window.iso(T + 60)})


def test_each_word_is_said_once_as_the_prediction_slips():
    d = _deadline()
    assert d.look(T + 50) is None  # ahead of plan
    assert d.look(T + 60.5) is None  # on plan, within a second
    kind, detail = d.look(T + 80)
    assert kind == 'job.using_margin'
    assert detail == {'eta_at': window.iso(T + 80), 'complete_by': window.iso(T + 100),
                      'margin_left_s': 20.0}
    assert d.look(T + 90) is None  # said already
    kind, detail = d.look(T + 130)
    assert kind == 'job.behind_deadline' and detail['margin_left_s'] == -30.0
    assert d.look(T + 140) is None and d.look(T + 85) is None


def test_a_job_that_jumps_past_its_deadline_says_only_that():
    d = _deadline()
    assert d.look(T + 200)[0] == 'job.behind_deadline'
    assert d.look(T + 80) is None


def test_the_outcome_says_whether_the_deadline_was_met():
    d = _deadline()
    assert d.outcome(T + 99) == {'complete_by': window.iso(T + 100), 'met': True}
    assert d.outcome(T + 101)['met'] is False
