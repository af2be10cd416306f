"""oslo.messaging over the real RabbitMQ, through slm_plugin.common.messaging.

Every test uses topics of its own, stops every server and listener it starts
and closes its transports; client timeouts and pytest-timeout make a broken
broker fail the test instead of hanging it.
"""

import queue
import uuid

import oslo_messaging
import pytest
from oslo_config import cfg

import slm_plugin.conf
from slm_plugin import context as slm_context
from slm_plugin import exception as db_exception
from slm_plugin.common import messaging

pytestmark = [pytest.mark.functional, pytest.mark.timeout(90)]

WAIT = 15  # seconds to wait for a message that should arrive


class PlanRejected(Exception):
    """An exception from a module the caller does not allow to be rebuilt."""


class PlannerEndpoint:
    """Stands in for the engine: computes from its arguments, records casts."""

    def __init__(self):
        self.casts = queue.Queue()

    def share_bandwidth(self, ctxt, link_mbps, memory_mib):
        """Shares proportional to memory, so that the copies finish together."""
        total = sum(memory_mib.values())
        return {
            'shares_mbps': {name: link_mbps * mib / total for name, mib in memory_mib.items()},
            'request_id': ctxt.request_id,
            'project_id': ctxt.project_id,
        }

    def member_switched_over(self, ctxt, server_id, downtime_ms):
        self.casts.put((ctxt.request_id, server_id, downtime_ms))

    def reject(self, ctxt, link_mbps):
        raise PlanRejected(f'a {link_mbps} Mbit/s link cannot move the group in time')

    def find_job(self, ctxt, job_id):
        raise db_exception.JobNotFound(job_id=job_id)


class NotificationEndpoint:
    def __init__(self):
        self.received = queue.Queue()

    def info(self, ctxt, publisher_id, event_type, payload, metadata):
        self.received.put(('info', ctxt.request_id, publisher_id, event_type, payload))

    def error(self, ctxt, publisher_id, event_type, payload, metadata):
        self.received.put(('error', ctxt.request_id, publisher_id, event_type, payload))


@pytest.fixture
def conf(rabbit_url, tmp_path):
    """A private configuration pointing at the test RabbitMQ."""
    path = tmp_path / 'slm.conf'
    path.write_text(
        '[DEFAULT]\n'
        f'transport_url = {rabbit_url}\n'
        'rpc_response_timeout = 10\n'
        '[oslo_messaging_rabbit]\n'
        # The queues of these throwaway topics go when their consumers do,
        # and the reply queues a minute after their last use.
        'amqp_auto_delete = true\n'
        'rabbit_transient_queues_ttl = 60\n'
        '[oslo_messaging_notifications]\n'
        'driver = messagingv2\n'
    )
    conf = cfg.ConfigOpts()
    slm_plugin.conf.register_opts(conf)
    conf(['--config-file', str(path)], project='slm', default_config_files=[],
         default_config_dirs=[])
    yield conf
    messaging.cleanup(conf)


@pytest.fixture
def start():
    """start(server_or_listener): started now, stopped and waited for at teardown."""
    started = []

    def _start(thing):
        thing.start()
        started.append(thing)
        return thing

    yield _start
    for thing in reversed(started):
        thing.stop()
        thing.wait()


@pytest.fixture
def topic():
    return f'slm-test-{uuid.uuid4().hex[:12]}'


def _context():
    return slm_context.RequestContext(project_id='p-42', is_admin=True)


def test_call_and_cast(conf, start, topic):
    endpoint = PlannerEndpoint()
    start(messaging.get_rpc_server(conf, topic, [endpoint], server='engine-1'))
    client = messaging.get_rpc_client(conf, topic, timeout=10).prepare(retry=2)
    ctxt = _context()

    result = client.call(ctxt, 'share_bandwidth', link_mbps=1000,
                         memory_mib={'master': 6144, 'worker-1': 2048})
    assert result == {'shares_mbps': {'master': 750.0, 'worker-1': 250.0},
                      'request_id': ctxt.request_id, 'project_id': 'p-42'}
    result = client.call(ctxt, 'share_bandwidth', link_mbps=90,
                         memory_mib={'a': 1, 'b': 1, 'c': 1})
    assert result['shares_mbps'] == {'a': 30.0, 'b': 30.0, 'c': 30.0}

    assert client.cast(ctxt, 'member_switched_over', server_id='srv-7', downtime_ms=212) is None
    assert endpoint.casts.get(timeout=WAIT) == (ctxt.request_id, 'srv-7', 212)


def test_call_to_a_server_of_the_topic(conf, start, topic):
    """A client aimed at one server reaches only that one, as the engine does an agent."""
    endpoints = {host: PlannerEndpoint() for host in ('cmp-1', 'cmp-2')}
    for host, endpoint in endpoints.items():
        start(messaging.get_rpc_server(conf, topic, [endpoint], server=host))
    client = messaging.get_rpc_client(conf, topic, server='cmp-2', timeout=10).prepare(retry=2)
    client.cast(_context(), 'member_switched_over', server_id='srv-1', downtime_ms=5)
    assert endpoints['cmp-2'].casts.get(timeout=WAIT)[1:] == ('srv-1', 5)
    assert endpoints['cmp-1'].casts.empty()


def test_exception_arrives_as_remote_error(conf, start, topic):
    start(messaging.get_rpc_server(conf, topic, [PlannerEndpoint()], server='engine-1'))
    client = messaging.get_rpc_client(conf, topic, timeout=10).prepare(retry=2)

    with pytest.raises(oslo_messaging.RemoteError) as excinfo:
        client.call(_context(), 'reject', link_mbps=5)
    assert excinfo.value.exc_type == 'PlanRejected'
    assert 'a 5 Mbit/s link cannot move the group in time' in excinfo.value.value

    # Errors of the allowed modules come back as themselves, arguments included.
    with pytest.raises(db_exception.JobNotFound) as excinfo:
        client.call(_context(), 'find_job', job_id='job-17')
    assert excinfo.value.job_id == 'job-17'
    assert 'Migration job job-17 could not be found.' in str(excinfo.value)


def test_notification_round_trip(conf, start, topic):
    endpoint = NotificationEndpoint()
    # Started before anything is sent: its queues exist once start() returns.
    start(messaging.get_notification_listener(conf, [topic], [endpoint]))
    notifier = messaging.get_notifier(conf, 'slm-engine.ctl-1', topics=[topic])
    ctxt = _context()

    notifier.info(ctxt, 'slm.job.switchover.end',
                  {'job_id': 'job-3', 'members': ['master', 'worker-1'], 'spread_ms': 41.5})
    notifier.error(ctxt, 'slm.job.member.failed', {'job_id': 'job-3', 'server_id': 'srv-9'})

    received = [endpoint.received.get(timeout=WAIT) for _ in range(2)]
    assert sorted(received) == sorted([
        ('info', ctxt.request_id, 'slm-engine.ctl-1', 'slm.job.switchover.end',
         {'job_id': 'job-3', 'members': ['master', 'worker-1'], 'spread_ms': 41.5}),
        ('error', ctxt.request_id, 'slm-engine.ctl-1', 'slm.job.member.failed',
         {'job_id': 'job-3', 'server_id': 'srv-9'}),
    ])
    assert endpoint.received.empty()
