"""slm_plugin.common.messaging on the in-process fake:// bus (the demo default)."""

import pytest
from oslo_config import cfg

import slm_plugin.conf
from slm_plugin import context as slm_context
from slm_plugin.common import messaging

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def conf():
    conf = cfg.ConfigOpts()
    slm_plugin.conf.register_opts(conf)
    conf([], project='slm', default_config_files=[], default_config_dirs=[])
    conf.set_override('host', 'ctl-1')
    yield conf
    messaging.cleanup(conf)
    conf.reset()


class Echo:
    def echo(self, ctxt, value):
        return {'value': value, 'user_id': ctxt.user_id, 'server': 'here'}


def test_serializer_carries_the_request_context():
    serializer = messaging.RequestContextSerializer()
    ctxt = slm_context.RequestContext(user_id='u-1', project_id='p-1', is_admin=True)
    wire = serializer.serialize_context(ctxt)
    assert isinstance(wire, dict)
    back = serializer.deserialize_context(wire)
    assert isinstance(back, slm_context.RequestContext)
    assert (back.request_id, back.user_id, back.project_id, back.is_admin) == (
        ctxt.request_id, 'u-1', 'p-1', True)
    assert serializer.serialize_context(None) == {}


def test_transports_are_cached_per_configuration_until_cleanup(conf):
    other = cfg.ConfigOpts()
    slm_plugin.conf.register_opts(other)
    other([], project='slm', default_config_files=[], default_config_dirs=[])
    transport = messaging.get_transport(conf)
    assert messaging.get_transport(conf) is transport
    assert messaging.get_transport(other) is not transport
    assert messaging.get_notification_transport(conf) is not transport
    messaging.cleanup(other)
    assert messaging.get_transport(conf) is transport
    messaging.cleanup(conf)
    assert messaging.get_transport(conf) is not transport


def test_agent_topic_follows_the_prefix(conf):
    assert messaging.agent_topic(conf, 'cmp-3') == 'slm-agent.cmp-3'
    conf.set_override('topic_prefix', 'slm-agent-dc2', group='agent')
    assert messaging.agent_topic(conf, 'cmp-3') == 'slm-agent-dc2.cmp-3'


def test_call_on_the_in_process_bus(conf):
    assert conf.transport_url == 'fake://'
    server = messaging.get_rpc_server(conf, 'slm-unit', [Echo()])
    server.start()
    try:
        # The server is [DEFAULT] host unless named: a client aimed at it gets through.
        client = messaging.get_rpc_client(conf, 'slm-unit', server='ctl-1', timeout=10)
        ctxt = slm_context.RequestContext(user_id='u-9')
        assert client.call(ctxt, 'echo', value=[1, 2]) == {
            'value': [1, 2], 'user_id': 'u-9', 'server': 'here'}
    finally:
        server.stop()
        server.wait()
