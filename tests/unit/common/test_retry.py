"""Retry policies: what is repeated, how often, and never acting twice; microversion choice."""

import pytest
import requests
import tenacity
from keystoneauth1 import exceptions as ks_exc
from openstack import exceptions as sdk_exc

from slm_plugin import exception
from slm_plugin.common import retry
from slm_plugin.nova import compute_api


def http(status, message='failed', cls=sdk_exc.HttpException):
    response = requests.Response()
    response.status_code = status
    return cls(message=message, response=response)


@pytest.mark.parametrize('exc, transient', [
    (ks_exc.ConnectFailure('refused'), True),
    (ks_exc.ConnectTimeout('slow'), True),
    (ConnectionResetError('reset'), True),
    (http(503), True),
    (http(500), True),
    (http(502), True),
    (http(501), False),
    (http(400, cls=sdk_exc.BadRequestException), False),
    (http(403, cls=sdk_exc.ForbiddenException), False),
    (http(404, cls=sdk_exc.NotFoundException), False),
    (http(409, "Cannot 'os-migrateLive' instance 1 while it is in task_state migrating",
          cls=sdk_exc.ConflictException), True),
    (http(409, 'Instance 1 is locked', cls=sdk_exc.ConflictException), False),
    (ValueError('a bug'), False),
])
def test_what_is_transient(exc, transient):
    assert retry.is_transient(exc) is transient


def test_a_composed_strategy_never_retries_refusals_whatever_the_predicates():
    always = (tenacity.retry_if_exception(lambda exc: True)
              & tenacity.retry_if_exception(retry.is_not_refused))
    assert retry.matches(always, http(503))
    for status in retry.NEVER_RETRIED:
        assert not retry.matches(always, http(status))


def test_rpc_calls_are_repeated_only_when_no_answer_came():
    import oslo_messaging

    assert retry.matches(retry.RPC_TRANSIENT, oslo_messaging.MessagingTimeout('no reply'))
    assert not retry.matches(retry.RPC_TRANSIENT, oslo_messaging.RemoteError('X', 'refused'))
    assert not retry.matches(retry.RPC_TRANSIENT, http(503))


class Flaky:
    def __init__(self, failures):
        self.failures = list(failures)
        self.calls = 0

    def __call__(self):
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return 'done'


def policy(**changes):
    sleeps = []
    return retry.RetryPolicy(attempts=4, initial_s=1.0, max_s=3.0, jitter_s=0.0,
                             sleep=sleeps.append, **changes), sleeps


def test_transient_failures_are_repeated_with_growing_capped_waits():
    p, sleeps = policy()
    fn = Flaky([http(503), ks_exc.ConnectFailure('x'), http(502)])
    assert p.call(fn) == 'done'
    assert fn.calls == 4
    assert sleeps == [1.0, 2.0, 3.0]


def test_the_last_failure_is_raised_when_attempts_run_out():
    p, sleeps = policy()
    fn = Flaky([http(503)] * 10)
    with pytest.raises(sdk_exc.HttpException):
        p.call(fn)
    assert fn.calls == 4
    assert len(sleeps) == 3


def test_a_refusal_is_raised_at_once():
    p, sleeps = policy()
    fn = Flaky([http(400, cls=sdk_exc.BadRequestException)])
    with pytest.raises(sdk_exc.BadRequestException):
        p.call(fn)
    assert fn.calls == 1
    assert sleeps == []


def test_jitter_stays_within_its_bound():
    sleeps = []
    p = retry.RetryPolicy(attempts=6, initial_s=0.5, max_s=100.0, jitter_s=0.25,
                          sleep=sleeps.append)
    with pytest.raises(sdk_exc.HttpException):
        p.call(Flaky([http(503)] * 10))
    for i, s in enumerate(sleeps):
        base = 0.5 * 2 ** i
        assert base <= s <= base + 0.25


def test_call_once_adopts_an_attempt_that_took_effect():
    p, _ = policy()
    sent = []

    def action():
        sent.append('start')
        raise ks_exc.ConnectFailure('dropped after the request was sent')

    assert retry.call_once(p, action, took_effect=lambda: 'adopted') == 'adopted'
    assert sent == ['start']


def test_call_once_repeats_an_attempt_that_did_not_take_effect():
    p, _ = policy()
    fn = Flaky([http(503)])
    asked = []
    assert retry.call_once(p, fn, took_effect=lambda: asked.append(1)) == 'done'
    assert fn.calls == 2
    assert asked == [1]


@pytest.mark.parametrize('server, chosen', [
    (('2.1', '2.100'), '2.96'),
    (('2.1', '2.96'), '2.96'),
    (('2.1', '2.79'), '2.79'),
    (('2.1', '2.64'), '2.64'),
    ((None, '2.70'), '2.70'),
])
def test_microversion_is_the_highest_both_know(server, chosen):
    assert compute_api.choose(*server) == chosen


@pytest.mark.parametrize('server, message', [
    (('2.1', '2.63'), 'needs at least 2.64'),
    (('2.97', '2.100'), 'knows them up to 2.96'),
    ((None, None), 'does not announce microversions'),
])
def test_microversions_slm_cannot_use_are_refused(server, message):
    with pytest.raises(exception.NovaVersionError, match=message):
        compute_api.choose(*server)
