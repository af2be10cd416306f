"""The job and member lifecycles, and the errors that explain a refused move."""

import pytest

from slm_plugin import exception
from slm_plugin.db import states

LIFECYCLES = [
    (states.JOB_STATUSES, states.JOB_TRANSITIONS, states.PENDING, states.COMPLETED, set()),
    # a member the job stopped watching mid-migration ends unknown (the cloud knows)
    (states.MEMBER_STATES, states.MEMBER_TRANSITIONS, states.QUEUED, states.SWITCHED_OVER,
     {states.UNKNOWN}),
]


@pytest.mark.parametrize('known, transitions, initial, success, unknown', LIFECYCLES)
def test_lifecycle_is_closed_and_ends_in_final_states(known, transitions, initial, success,
                                                      unknown):
    assert set(transitions) == set(known)
    for targets in transitions.values():
        assert targets <= set(known)
    finals = {state for state, targets in transitions.items() if not targets}
    assert finals == {success, states.FAILED, states.ABORTED} | unknown
    # Whatever is still in progress can fail or be aborted.
    for state in set(known) - finals:
        assert {states.FAILED, states.ABORTED} <= transitions[state], state
    # Every state is reachable from the initial one.
    reached, frontier = {initial}, [initial]
    while frontier:
        for target in transitions[frontier.pop()] - reached:
            reached.add(target)
            frontier.append(target)
    assert reached == set(known)


def test_a_job_cannot_skip_planning_or_running():
    assert states.COMPLETED not in states.JOB_TRANSITIONS[states.PENDING]
    assert states.COMPLETED not in states.JOB_TRANSITIONS[states.PLANNING]
    assert states.RUNNING not in states.JOB_TRANSITIONS[states.PENDING]


def test_errors_say_what_was_refused_and_what_is_allowed():
    error = exception.InvalidStateTransition(
        kind='Job', ident='j-1', current='running', requested='pending',
        allowed=['failed', 'completed', 'aborted'])
    assert str(error) == ("Job j-1 cannot go from 'running' to 'pending'; "
                          "allowed from 'running': aborted, completed, failed.")
    assert (error.current, error.requested) == ('running', 'pending')
    final = exception.InvalidStateTransition(
        kind='Member', ident=7, current='failed', requested='held', allowed=[])
    assert 'none, it is final' in str(final)
    assert str(exception.JobNotFound(job_id='j-2')) == 'Migration job j-2 could not be found.'


def test_errors_rebuild_from_message_and_kwargs():
    """What oslo.messaging does with an allowed remote exception."""
    error = exception.ConcurrentUpdate(kind='Job', ident='j-3', expected='planning')
    rebuilt = exception.ConcurrentUpdate(*error.args, **error.kwargs)
    assert str(rebuilt) == str(error)
    assert rebuilt.ident == 'j-3'
