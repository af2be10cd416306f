"""The simulated cloud in a process of its own (slm-sim-cloud), driven over RPC.

A simulation inside an engine dies with the engine, and with it the
migrations it was running: nothing would be left for another engine to take
over. slm-sim-cloud plays the part of the real cloud instead: it outlives the
engines, every engine and API reads the same scenario from the configuration,
and the engines call it over oslo.messaging as they would call Nova and the
agents. ``[engine] cloud = simulated-rpc`` selects it.
"""

from __future__ import annotations

import dataclasses
import threading
import time

import oslo_messaging as messaging
from oslo_log import log as logging

from slm_plugin import context as slm_context
from slm_plugin import exception
from slm_plugin.common import messaging as rpc
from slm_plugin.common import retry as retries
from slm_plugin.control import cloud as api
from slm_plugin.simulated.backend import (
    PacedCloud,
    ScenarioCloudDriver,
    build_paced_cloud,
    load_configured_scenario,
)

LOG = logging.getLogger(__name__)

RPC_VERSION = '1.0'

#: calls of the simulated cloud that are safe to repeat when no answer came
REPEATABLE = frozenset({'now', 'progress', 'set_cap', 'hold'})


class SimCloudEndpoint:
    """The RPC face of a PacedCloud; every answer carries the cloud's clock."""

    target = messaging.Target(version=RPC_VERSION)

    def __init__(self, cloud: PacedCloud):
        self.cloud = cloud

    def _answer(self, **values):
        return dict(values, now=self.cloud.now())

    def now(self, ctxt):
        return self._answer()

    def moved(self, ctxt):
        return self._answer(moved=self.cloud.moved())

    def progress(self, ctxt, members=None):
        wanted = set(members) if members is not None else None
        progress = self.cloud.progress(wanted)
        return self._answer(progress={n: dataclasses.asdict(p) for n, p in progress.items()})

    @messaging.expected_exceptions(exception.CloudError)
    def start(self, ctxt, member, destination, cap_mibps):
        self.cloud.start(member, destination, cap_mibps)
        return self._answer()

    @messaging.expected_exceptions(exception.CloudError)
    def set_cap(self, ctxt, member, cap_mibps):
        self.cloud.set_cap(member, cap_mibps)
        return self._answer()

    @messaging.expected_exceptions(exception.CloudError)
    def hold(self, ctxt, member, held):
        self.cloud.hold(member, held)
        return self._answer()

    @messaging.expected_exceptions(exception.CloudError)
    def force_complete(self, ctxt, member, mode):
        self.cloud.force_complete(member, mode)
        return self._answer()

    @messaging.expected_exceptions(exception.CloudError)
    def abort(self, ctxt, member):
        self.cloud.abort(member)
        return self._answer()

    def stats(self, ctxt):
        return self.cloud.stats()


class RemoteCloud(api.Cloud):
    """A Cloud whose migrations run in slm-sim-cloud.

    ``now()`` does not cost a call: it extrapolates the clock of the last
    answer with the local monotonic clock and the simulation speed.
    """

    def __init__(self, conf, speed: float):
        self.speed = speed
        self._topic = conf.simulation.topic
        self._timeout = conf.simulation.call_timeout
        self._client = rpc.get_rpc_client(conf, conf.simulation.topic,
                                          version=RPC_VERSION,
                                          timeout=conf.simulation.call_timeout)
        self._context = slm_context.get_admin_context()
        self._retry = retries.RetryPolicy.for_rpc(conf)
        self._lock = threading.Lock()
        self._clock = None  # (cloud seconds, local monotonic) of the last answer

    def _call(self, method, **kwargs):
        try:
            if method in REPEATABLE:
                answer = self._retry.call(self._client.call, self._context, method,
                                          what=f'{method} on the simulated cloud', **kwargs)
            else:
                answer = self._client.call(self._context, method, **kwargs)
        except messaging.RemoteError as exc:
            if exc.exc_type == 'CloudError':
                raise exception.CloudError(exc.value) from None
            raise
        except (messaging.MessagingTimeout, messaging.MessageDeliveryFailure,
                messaging.MessageUndeliverable) as exc:
            why = (f'no answer within {self._timeout} s'
                   if isinstance(exc, messaging.MessagingTimeout) else 'nobody listens')
            raise exception.CloudUnavailable(
                f'The simulated cloud (slm-sim-cloud on topic {self._topic}) did not answer '
                f'its {method} call ({why}): is it running?') from exc
        with self._lock:
            self._clock = (answer['now'], time.monotonic())
        return answer

    def now(self) -> float:
        with self._lock:
            clock = self._clock
        if clock is None:
            return self._call('now')['now']
        seconds, at = clock
        return seconds + (time.monotonic() - at) * self.speed

    def start(self, member, destination, cap_mibps):
        self._call('start', member=member, destination=destination, cap_mibps=cap_mibps)

    def set_cap(self, member, cap_mibps):
        self._call('set_cap', member=member, cap_mibps=cap_mibps)

    def hold(self, member, held):
        self._call('hold', member=member, held=held)

    def force_complete(self, member, mode):
        self._call('force_complete', member=member, mode=mode)

    def abort(self, member):
        self._call('abort', member=member)

    def progress(self, members=None) -> dict[str, api.Progress]:
        answer = self._call('progress', members=sorted(members) if members else None)
        return {name: api.Progress(**p) for name, p in answer['progress'].items()}

    def wait(self, seconds):
        time.sleep(seconds / self.speed)

    def moved(self) -> dict[str, str]:
        return self._call('moved')['moved']

    def stats(self) -> dict:
        return self._call('stats')


class RemoteSimulatedBackend(ScenarioCloudDriver):
    """``[engine] cloud = simulated-rpc``: the simulation of a slm-sim-cloud process."""

    shared = True

    def _make_cloud(self):
        return RemoteCloud(self.conf, self.time_scale)


class SimCloudService:
    """slm-sim-cloud: serve one simulation of ``[engine] scenario`` on ``[simulation] topic``."""

    def __init__(self, conf):
        self.conf = conf
        self.scenario = load_configured_scenario(conf)
        self.cloud = build_paced_cloud(conf, self.scenario)
        self._server = rpc.get_rpc_server(conf, conf.simulation.topic,
                                          [SimCloudEndpoint(self.cloud)])

    def start(self):
        self._server.start()
        LOG.info('Simulating %s at %.3g times real time on topic %s',
                 self.scenario.name, self.cloud.speed, self.conf.simulation.topic)

    def stop(self):
        self._server.stop()
        self._server.wait()
