"""The migration ledger against libvirt's test driver, whose guests emit real lifecycle
events (suspend, resume) but never migrate: those events must leave nothing behind, and
a reconnect must register again. What migrations leave in it is checked on real QEMU
(tests/e2e/test_libvirt_cloud.py)."""

import time

import libvirt
import pytest

from slm_plugin.agent import driver as agent_driver
from slm_plugin.agent import ledger as agent_ledger

pytestmark = pytest.mark.timeout(60)


def _wait(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_only_migration_events_count():
    assert agent_ledger.migration_event(libvirt.VIR_DOMAIN_EVENT_RESUMED,
                                        libvirt.VIR_DOMAIN_EVENT_RESUMED_MIGRATED) == 'resumed'
    assert agent_ledger.migration_event(libvirt.VIR_DOMAIN_EVENT_SUSPENDED,
                                        libvirt.VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED) == 'paused'
    assert agent_ledger.migration_event(libvirt.VIR_DOMAIN_EVENT_SUSPENDED,
                                        libvirt.VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY) == 'postcopy'
    assert agent_ledger.migration_event(libvirt.VIR_DOMAIN_EVENT_RESUMED,
                                        libvirt.VIR_DOMAIN_EVENT_RESUMED_UNPAUSED) is None
    assert agent_ledger.migration_event(libvirt.VIR_DOMAIN_EVENT_SUSPENDED,
                                        libvirt.VIR_DOMAIN_EVENT_SUSPENDED_PAUSED) is None


def test_a_pause_is_no_migration_and_a_reconnect_listens_again():
    agent_driver.start_event_loop()
    drv = agent_driver.LibvirtDriver('test:///default')
    ledger = agent_ledger.MigrationLedger(drv)
    try:
        (guest,) = drv.list_domains()
        dom = drv.connection().lookupByUUIDString(guest['uuid'])
        dom.suspend()
        dom.resume()
        assert _wait(lambda: ledger.events >= 2), ledger.events  # the events did arrive
        assert ledger.record(guest['uuid']) == {}
        # libvirtd gone and back: a new connection, whose events reach the hooks again
        drv.close()
        dom = drv.connection().lookupByUUIDString(guest['uuid'])
        dom.suspend()
        assert _wait(lambda: ledger.events >= 3), ledger.events
        assert ledger.record(guest['uuid']) == {}
        dom.resume()
    finally:
        drv.close()
