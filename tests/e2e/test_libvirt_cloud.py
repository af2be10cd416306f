"""One real live migration of a dirtying guest through LibvirtCloud and the control loop."""

import time

import pytest

from slm_plugin.agent.driver import LibvirtDriver
from slm_plugin.agent.ledger import MigrationLedger
from slm_plugin.control import cloud as api
from slm_plugin.control.loop import ControlLoop
from slm_plugin.model import VM, CompletionPolicy
from slm_plugin.planning.baselines import ParallelPlanner
from slm_plugin.scenario.model import Group, Host, Limits, Member, Request, Scenario
from tests.e2e import harness
from tests.e2e.libvirt_cloud import LibvirtCloud

pytestmark = pytest.mark.e2e

A, B = 'slm-e2e-a', 'slm-e2e-b'


def test_one_migration_of_a_dirtying_guest(testbed):
    guest = harness.GuestSpec('solo', dirty_mibps=6, wws_mib=32)
    testbed.boot(A, [guest])
    scenario = Scenario(
        name='solo', hosts=(Host(A, 'dc', 64.0), Host(B, 'dc', 64.0)), links=(),
        groups=(Group('solo', (Member('solo', 'solo', A, VM(memory_mib=128,
                                                             dirty_rate_mibps=6)),)),),
        request=Request(to_hosts=(B,)),
        limits=Limits(policy=CompletionPolicy(max_downtime_s=0.3)))
    cloud = LibvirtCloud(testbed.uris(), {'solo': (A, guest.uuid)}, default_cap_mibps=32,
                         dest_xml=testbed.dest_xml)
    # the agent's ledger on each side, on connections of its own, as slm-agent keeps it
    drivers = {h: LibvirtDriver(host.uri) for h, host in testbed.uris().items()}
    ledgers = {h: MigrationLedger(drv) for h, drv in drivers.items()}
    for drv in drivers.values():
        drv.connection()
    try:
        planner = ParallelPlanner()
        seen = []
        outcome = ControlLoop(cloud, scenario, planner, planner.plan(scenario), tick_s=0.25,
                              deadline_s=120,
                              observer=lambda t, p: seen.append(dict(p))).run()
        (result,) = cloud.results()
        epoch = time.time() - cloud.now()  # the cloud's instants in seconds since the epoch
        time.sleep(0.5)  # the last events
        source, dest = ledgers[A].record(guest.uuid), ledgers[B].record(guest.uuid)
    finally:
        cloud.close()
        for drv in drivers.values():
            drv.close()

    assert outcome.status == 'completed', outcome
    assert outcome.members[0].location == B
    assert result.status == api.COMPLETED and result.error is None
    # progress came from libvirt's job statistics while it ran
    rounds = {p['solo'].round for p in seen if 'solo' in p}
    assert max(rounds) >= 1, rounds
    assert any(p['solo'].throughput_mibps > 20 for p in seen if 'solo' in p)
    assert result.switchover_at is not None and result.transfer_started_at is not None
    assert result.downtime_ms is not None and result.downtime_ms < 1000
    assert result.wire_mib > 64  # the guest fills its memory: most of it is sent
    # what the agent's ledger tells of it (NovaCloud reports these on a real cloud):
    # the switchover instant of the destination's resume event, libvirt's own downtime
    # and bytes from the job-completed event
    assert dest.get('incoming_at') is not None and dest.get('resumed_at') is not None, dest
    assert abs(dest['resumed_at'] - epoch - result.switchover_at) < 0.3, (dest, result)
    assert source.get('paused_at') is not None, source
    assert 0 <= dest['resumed_at'] - source['paused_at'] < 0.001 * result.downtime_ms + 0.5
    final = dest.get('completed') or source.get('completed')
    assert final is not None, (source, dest)
    assert abs(final['downtime_ms'] - result.downtime_ms) <= max(50, 0.1 * result.downtime_ms)
    assert abs(final['memory_processed_mib'] - result.wire_mib) <= 0.1 * result.wire_mib
    # the guest runs on at the destination: its heartbeat goes on there, memory intact
    before = harness.heartbeats(harness.console_path(testbed.base, 'solo', A))
    deadline = time.monotonic() + 20
    while len(harness.heartbeats(harness.console_path(testbed.base, 'solo', B))) < 2:
        assert time.monotonic() < deadline, 'no heartbeat on the destination'
        time.sleep(0.2)
    after = harness.heartbeats(harness.console_path(testbed.base, 'solo', B))
    assert after[0][0] >= before[-1][0] and after[-1][1] > before[-1][1]
    assert all(bad == 0 for _, _, bad in before + after)
    testbed.destroy(B, 'solo')


def test_the_agent_driver_reconnects_when_libvirtd_restarts(testbed):
    from slm_plugin import exception
    from slm_plugin.agent.driver import LibvirtDriver

    host = testbed.hosts[B]
    drv = LibvirtDriver(host.uri)
    try:
        assert drv.host_info()['hostname'] == B
        host.stop()
        with pytest.raises(exception.HypervisorUnavailable):
            drv.list_domains()
        host.start()
        assert drv.host_info()['hostname'] == B  # a new connection, by itself
    finally:
        drv.close()
