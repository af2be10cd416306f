"""The agent over RPC on the in-process fake:// bus, and the engine's collector and actuator.

The agent serves libvirt's test driver: inventory works, migration actions fail
as NotSupported, and the caller gets those same classes back. A host without
an agent is no error for planning: the collector says so and returns no dirty
rates; the actuator refuses, as ActuatorError (a CloudError).
"""

import time

import pytest
from oslo_config import cfg

import slm_plugin.conf
from slm_plugin import exception
from slm_plugin.agent import client as collectors
from slm_plugin.agent.service import AgentService
from slm_plugin.common import messaging
from slm_plugin.model import VM
from slm_plugin.scenario.model import Group, Host, Member, Request, Scenario

pytestmark = pytest.mark.timeout(60)

HOST = 'cmp-1'
ABSENT = 'cmp-9'


@pytest.fixture
def conf():
    conf = cfg.ConfigOpts()
    slm_plugin.conf.register_opts(conf)
    conf([], project='slm', default_config_files=[], default_config_dirs=[])
    conf.set_override('host', HOST)
    conf.set_override('libvirt_uri', 'test:///default', group='agent')
    conf.set_override('dirty_rate_seconds', 1, group='agent')
    conf.set_override('probe_timeout', 1, group='agent')
    conf.set_override('rpc_timeout', 5, group='agent')
    yield conf
    messaging.cleanup(conf)
    conf.reset()  # overrides live on the option groups, which every ConfigOpts shares


@pytest.fixture
def agent(conf):
    service = AgentService(conf)
    service.start()
    yield service
    service.stop()


@pytest.fixture
def client(conf):
    return collectors.AgentClient(conf)


@pytest.fixture
def guest(agent):
    return agent.driver.list_domains()[0]['uuid']


def test_ping_and_inventory_over_rpc(agent, client, guest):
    assert client.ping(HOST) == {'host': HOST, 'uri': 'test:///default', 'hypervisor': True,
                                 'hostname': agent.driver.host_info()['hostname']}
    (dom,) = client.call(HOST, 'list_domains')
    assert dom['uuid'] == guest
    stats = client.call(HOST, 'domain_stats', instance_uuid=guest)
    assert stats['memory_mib'] == 2048 and stats['disks'][0]['target'] == 'vda'


def test_agent_errors_come_back_as_the_same_classes(agent, client, guest):
    with pytest.raises(exception.DomainNotFound, match='no guest'):
        client.call(HOST, 'domain_stats', instance_uuid='00000000-0000-0000-0000-000000000000')
    with pytest.raises(exception.NotSupported, match='not supported'):
        client.call(HOST, 'migration_stats', instance_uuid=guest)
    with pytest.raises(exception.InvalidRequest, match='positive'):
        client.call(HOST, 'set_max_speed', instance_uuid=guest, cap_mibps=-1)
    with pytest.raises(exception.InvalidRequest, match='mode'):
        client.call(HOST, 'force_complete', instance_uuid=guest, mode='teleport')


def test_no_agent_on_a_host_is_agent_unavailable(conf, client):
    with pytest.raises(exception.AgentUnavailable, match=f'no SLM agent answered on host {ABSENT}'):
        client.ping(ABSENT, timeout=0.5)


def test_collector_measures_and_says_what_it_could_not(conf, agent, guest):
    collector = collectors.AgentCollector(conf)
    other = '22222222-2222-2222-2222-222222222222'
    result = collector.collect({guest: HOST, other: ABSENT})
    mine = result.measurements[guest]
    assert mine.memory_mib == 2048 and mine.vcpus == 2 and mine.disk_mib > 0
    assert mine.dirty_rate_mibps is None  # the test driver has no dirty-rate calculation
    assert result.measurements[other] == collectors.Measurement(other, ABSENT)
    assert result.hosts_without_agent == {ABSENT}
    text = '\n'.join(result.notes)
    assert f'no SLM agent on {ABSENT}' in text
    assert 'planning without measured dirty rates for 1 server(s) on cmp-9' in text
    assert 'dirty rate not measured' in text and 'not supported' in text


def test_measurements_replace_the_estimates_where_there_are_some():
    scenario = Scenario(
        's', (Host('a', 'x', 100), Host('b', 'y', 100)), (),
        (Group('g', (Member('m1', 'g', 'a', VM(512, dirty_rate_mibps=5)),
                     Member('m2', 'g', 'a', VM(512, dirty_rate_mibps=7)))),),
        Request(to_hosts=('b',)))
    col = collectors.Collection({
        'u1': collectors.Measurement('u1', 'a', memory_mib=1024, dirty_rate_mibps=11.5),
        'u2': collectors.Measurement('u2', 'a')})
    out = collectors.with_measurements(scenario, col, {'m1': 'u1', 'm2': 'u2'})
    m1, m2 = out.groups[0].members
    assert (m1.vm.memory_mib, m1.vm.dirty_rate_mibps) == (1024, 11.5)
    assert (m2.vm.memory_mib, m2.vm.dirty_rate_mibps) == (512, 7)


def test_actuator_reaches_the_agent_and_refuses_as_cloud_errors(conf, agent, guest):
    act, notes = collectors.actuator_for(conf, [HOST])
    assert isinstance(act, collectors.AgentActuator) and notes == []
    with pytest.raises(exception.CloudError, match='not supported') as err:
        act.set_cap(guest, HOST, 10)
    assert isinstance(err.value.cause, exception.NotSupported)
    assert not err.value.transient  # the agent answered: sending it again changes nothing
    with pytest.raises(exception.CloudError):
        act.hold(guest, HOST, True)
    with pytest.raises(exception.CloudError):
        act.force_complete(guest, HOST, 'postcopy')
    # dirty_rate never blocks for a measurement: without a migration it is what was
    # remembered, and a refusal is a CloudError the caller may ignore
    with pytest.raises(exception.CloudError):
        act.dirty_rate(guest, HOST)


def test_the_agent_serves_its_migration_ledger(conf, agent, guest):
    """A guest that never migrated has an empty record; a pause of it is no
    migration (what migrations leave there is checked on real QEMU, tests/e2e)."""
    act, _ = collectors.actuator_for(conf, [HOST])
    assert act.record(guest, HOST) == {}
    dom = agent.driver.connection().lookupByUUIDString(guest)
    before = agent.ledger.events
    dom.suspend()
    dom.resume()
    deadline = time.monotonic() + 5
    while agent.ledger.events < before + 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert agent.ledger.events >= before + 2  # the agent listens to its libvirtd
    assert act.record(guest, HOST) == {}
    with pytest.raises(exception.CloudError, match='unknown|no SLM agent|unreachable'):
        act.record(guest, ABSENT)


def test_a_cap_no_agent_answers_is_transient(conf, agent, guest):
    """What the control loop sends again (a killed agent may be back by the next tick)."""
    act = collectors.AgentActuator(conf)
    with pytest.raises(exception.ActuatorError, match=f'no SLM agent answered on host {ABSENT}') \
            as err:
        act.set_cap(guest, ABSENT, 10)
    assert isinstance(err.value.cause, exception.AgentUnavailable)
    assert err.value.transient


def test_a_host_whose_agent_did_not_answer_is_not_waited_for_again_at_once(conf, agent, guest):
    """A killed agent would otherwise hold the control loop for rpc_timeout x attempts at
    every cap it is sent; its host is asked again after probe_timeout, once, briefly."""
    now = [100.0]
    client = collectors.AgentClient(conf, timeout=1, clock=lambda: now[0])
    with pytest.raises(exception.AgentUnavailable, match='within 1 s') as first:
        client.call(ABSENT, 'set_max_speed', instance_uuid=guest, cap_mibps=10)
    assert 'not asked again' not in str(first.value)
    now[0] += 0.5  # within probe_timeout (1 s): refused without asking
    with pytest.raises(exception.AgentUnavailable, match='not asked again for 1 s') as soon:
        client.call(ABSENT, 'set_max_speed', instance_uuid=guest, cap_mibps=10)
    assert str(first.value) in str(soon.value)
    now[0] += 1.0  # asked again
    with pytest.raises(exception.AgentUnavailable) as later:
        client.call(ABSENT, 'set_max_speed', instance_uuid=guest, cap_mibps=10)
    assert 'not asked again' not in str(later.value)
    # a host whose agent answers is not affected, nor is one that answers with an error
    assert client.ping(HOST)['hypervisor'] is True
    with pytest.raises(exception.NotSupported):
        client.call(HOST, 'set_max_speed', instance_uuid=guest, cap_mibps=10)
    with pytest.raises(exception.NotSupported):
        client.call(HOST, 'set_max_speed', instance_uuid=guest, cap_mibps=10)


def test_no_actuator_without_agents_and_the_reason(conf, agent):
    act, notes = collectors.actuator_for(conf, [HOST, ABSENT])
    assert act is None
    assert any('bandwidth control is not available' in n and ABSENT in n for n in notes)


def test_agent_command_serves_until_stopped(conf, monkeypatch):
    import threading

    from slm_plugin.cmd import agent as cmd

    monkeypatch.setattr(cmd, 'CONF', conf)
    monkeypatch.setattr(cmd.logging, 'setup', lambda *a, **k: None)
    monkeypatch.setattr(cmd.logging, 'register_options', lambda c: None)
    stop = threading.Event()
    runner = threading.Thread(target=cmd.main, kwargs={'argv': [], 'stop_event': stop})
    runner.start()
    try:
        client = collectors.AgentClient(conf)
        for _ in range(50):
            try:
                assert client.ping(HOST, timeout=0.5)['hypervisor'] is True
                break
            except exception.AgentUnavailable:
                continue
        else:
            pytest.fail('slm-agent did not answer')
    finally:
        stop.set()
        runner.join(timeout=20)
    assert not runner.is_alive()
