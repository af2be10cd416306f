"""Retries of calls to other services: tenacity policies that compose.

What is worth repeating is decided by predicates on the exception, combined
with tenacity's own operators into a retry strategy (``TRANSIENT``):

* ``is_connection_error``: no connection, a timeout, a connection dropped
  before the answer came (the request may or may not have been carried out);
* ``is_server_error``: HTTP 5xx other than 501 (the service is overloaded,
  restarting, or behind a proxy that lost it);
* ``is_busy``: HTTP 409 because the server is in the middle of another task
  (Nova's "while it is in task_state ..."); the task ends, the call can succeed.

Requests the API refused (400, 403, 404, and any other 4xx) are never
repeated, whatever the other predicates say: the same request gets the same
answer (``& retry_if_exception(is_not_refused)``). The RPC clients of the
engine (the agents, the shared simulated cloud) use the same RetryPolicy with
``RPC_TRANSIENT``, for the calls that are safe to repeat.

``RetryPolicy`` is the how-often: a limit on attempts, exponential backoff
with random jitter (so that many callers that failed together do not retry
together). ``call_once`` makes an action that must not happen twice safe to
retry: before every repeat it asks whether the first attempt took effect after
all (its answer was lost), and adopts that result instead of acting again.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass

import tenacity
from oslo_log import log as logging

LOG = logging.getLogger(__name__)

NEVER_RETRIED = (400, 403, 404)


def http_status(exc: BaseException) -> int | None:
    """The HTTP status an exception carries (openstacksdk or keystoneauth), if any."""
    for attr in ('status_code', 'http_status'):
        value = getattr(exc, attr, None)
        if isinstance(value, int):
            return value
    response = getattr(exc, 'response', None)
    value = getattr(response, 'status_code', None)
    return value if isinstance(value, int) else None


def is_connection_error(exc: BaseException) -> bool:
    import requests
    from keystoneauth1 import exceptions as ks_exc

    return isinstance(exc, (ks_exc.ConnectionError, requests.ConnectionError,
                            requests.Timeout, ConnectionError, TimeoutError))


def is_server_error(exc: BaseException) -> bool:
    status = http_status(exc)
    return status is not None and 500 <= status < 600 and status != 501


def is_busy(exc: BaseException) -> bool:
    """A 409 because the server is busy with another task, not a lasting conflict."""
    if http_status(exc) != 409:
        return False
    text = ' '.join(str(part) for part in (exc, getattr(exc, 'details', ''))).lower()
    return 'task_state' in text or 'task state' in text


def is_not_refused(exc: BaseException) -> bool:
    """Not an answer that says no (400, 403, 404): those are never worth repeating."""
    return http_status(exc) not in NEVER_RETRIED


#: what a cloud API call is repeated for
TRANSIENT = ((tenacity.retry_if_exception(is_connection_error)
              | tenacity.retry_if_exception(is_server_error)
              | tenacity.retry_if_exception(is_busy))
             & tenacity.retry_if_exception(is_not_refused))


def is_rpc_transient(exc: BaseException) -> bool:
    """No answer over oslo.messaging (the broker restarting, a lost reply)."""
    import oslo_messaging

    return isinstance(exc, (oslo_messaging.MessagingTimeout,
                            oslo_messaging.MessageDeliveryFailure))


#: what an RPC call that is safe to repeat is repeated for
RPC_TRANSIENT = tenacity.retry_if_exception(is_rpc_transient)


def matches(strategy: tenacity.retry_base, exc: BaseException) -> bool:
    """Whether ``strategy`` would repeat a call that raised ``exc``."""
    state = tenacity.RetryCallState(None, None, (), {})
    state.set_exception((type(exc), exc, exc.__traceback__))
    return bool(strategy(state))


def is_transient(exc: BaseException) -> bool:
    """Whether a cloud API call that raised ``exc`` is worth repeating (``TRANSIENT``)."""
    return matches(TRANSIENT, exc)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to repeat a call that failed transiently."""

    attempts: int = 5
    initial_s: float = 0.5
    max_s: float = 10.0
    jitter_s: float | None = None  # None: as much as initial_s
    retry_on: tenacity.retry_base = TRANSIENT
    sleep: Callable[[float], None] = time.sleep

    @classmethod
    def from_conf(cls, conf, **changes) -> RetryPolicy:
        """The policy the ``[nova] retry_*`` options describe."""
        return cls(attempts=conf.nova.retry_attempts, initial_s=conf.nova.retry_initial_delay,
                   max_s=conf.nova.retry_max_delay, **changes)

    @classmethod
    def for_rpc(cls, conf, **changes) -> RetryPolicy:
        """The policy of every RPC client: ``[DEFAULT] rpc_retry_attempts``, RPC_TRANSIENT."""
        return cls(attempts=conf.rpc_retry_attempts, initial_s=0.5, max_s=5.0,
                   retry_on=RPC_TRANSIENT, **changes)

    def but(self, **changes) -> RetryPolicy:
        return dataclasses.replace(self, **changes)

    def retrying(self, what: str = 'call') -> tenacity.Retrying:
        jitter = self.initial_s if self.jitter_s is None else self.jitter_s

        def log_retry(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            LOG.warning('%s failed (attempt %d of %d): %s; trying again in %.1f s', what,
                        state.attempt_number, self.attempts, _describe(exc),
                        state.next_action.sleep if state.next_action else 0.0)

        return tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.attempts),
            wait=tenacity.wait_exponential_jitter(multiplier=self.initial_s, max=self.max_s,
                                                  jitter=jitter),
            retry=self.retry_on,
            before_sleep=log_retry,
            sleep=self.sleep,
            reraise=True,
        )

    def call(self, fn: Callable, *args, what: str | None = None, **kwargs):
        """``fn(*args, **kwargs)``, repeated while it fails transiently."""
        return self.retrying(what or getattr(fn, '__name__', 'call'))(fn, *args, **kwargs)


def call_once(policy: RetryPolicy, action: Callable[[], object],
              took_effect: Callable[[], object], what: str = 'action'):
    """Do ``action`` at most once in effect, retrying transient failures.

    Before each repeat, ``took_effect()`` is asked whether an earlier attempt
    was carried out although its answer was lost (a connection dropped after
    the request was accepted, a 5xx from a proxy after the service acted). A
    truthy answer is adopted and returned; the action is not sent again.
    Returns ``action()``'s result when it is the attempt that succeeds.
    """
    for attempt in policy.retrying(what):
        with attempt:
            if attempt.retry_state.attempt_number > 1:
                adopted = took_effect()
                if adopted:
                    LOG.info('%s: an earlier attempt took effect; adopting it', what)
                    return adopted
            return action()
    raise AssertionError('unreachable: tenacity either returns or raises')  # pragma: no cover


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return 'no result'
    status = http_status(exc)
    head = f'HTTP {status}: ' if status else f'{type(exc).__name__}: '
    return head + str(exc).splitlines()[0][:300] if str(exc) else head.rstrip(': ')
