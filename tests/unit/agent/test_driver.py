"""The agent's libvirt driver against libvirt's test driver (inventory, errors, reconnects).

The test driver has guests, memory, disks and CPU time, but no migration jobs,
dirty-rate calculation or max speed: those calls must fail as NotSupported, with
libvirt's reason, and never as a bare libvirtError.
"""

import libvirt
import pytest

from slm_plugin import exception
from slm_plugin.agent import driver as agent_driver

pytestmark = pytest.mark.timeout(60)

TEST_URI = 'test:///default'
UNKNOWN = '11111111-2222-3333-4444-555555555555'


@pytest.fixture
def drv():
    d = agent_driver.LibvirtDriver(TEST_URI)
    yield d
    d.close()


@pytest.fixture
def guest(drv):
    return drv.list_domains()[0]


def _error(code: int, message: str = 'boom') -> libvirt.libvirtError:
    exc = libvirt.libvirtError(message)
    exc.err = (code, 0, message, 2, None, None, None, 0, 0)
    return exc


def test_inventory_of_the_test_hypervisor(drv):
    info = drv.host_info()
    assert info['uri'] == TEST_URI and info['cpus'] > 0 and info['memory_mib'] > 0
    guests = drv.list_domains()
    assert [g['name'] for g in guests] == ['test']
    g = guests[0]
    assert g['memory_mib'] == 2048 and g['max_memory_mib'] == 8192 and g['vcpus'] == 2
    assert g['active'] is True and g['cpu_time_s'] > 0


def test_domain_stats_by_uuid_with_disks_and_cpu_use(drv, guest):
    first = drv.domain_stats(guest['uuid'])
    assert first['uuid'] == guest['uuid']
    assert first['cpu_use'] is None or first['cpu_use'] >= 0  # needs two samples
    (disk,) = first['disks']
    assert disk['target'] == 'vda' and disk['source'] == '/guest/diskimage1'
    assert disk['capacity_mib'] is not None and disk['capacity_mib'] > 0
    second = drv.domain_stats(guest['uuid'])
    assert second['cpu_use'] is not None and second['cpu_use'] >= 0


def test_unknown_guest_is_domain_not_found(drv):
    with pytest.raises(exception.DomainNotFound, match=UNKNOWN):
        drv.domain_stats(UNKNOWN)
    with pytest.raises(exception.DomainNotFound):
        drv.set_max_speed(UNKNOWN, 10)


@pytest.mark.parametrize('call', [
    lambda d, u: d.migration_stats(u),
    lambda d, u: d.dirty_rate(u, 1),
    lambda d, u: d.set_max_speed(u, 10),
    lambda d, u: d.hold(u, True),
    lambda d, u: d.abort(u),
    lambda d, u: d.start_postcopy(u),
])
def test_what_the_test_driver_cannot_do_is_not_supported(drv, guest, call):
    with pytest.raises(exception.NotSupported, match='not supported'):
        call(drv, guest['uuid'])


@pytest.mark.parametrize('cap', [0, -3, float('nan'), 'fast'])
def test_a_bad_cap_is_an_invalid_request(drv, guest, cap):
    with pytest.raises(exception.InvalidRequest):
        drv.set_max_speed(guest['uuid'], cap)


def test_bad_arguments_are_invalid_requests(drv, guest):
    with pytest.raises(exception.InvalidRequest, match='mode'):
        drv.force_complete(guest['uuid'], 'teleport')
    with pytest.raises(exception.InvalidRequest):
        drv.set_max_downtime(guest['uuid'], 0)
    with pytest.raises(exception.InvalidRequest):
        drv.dirty_rate(guest['uuid'], 0)


def test_caps_become_whole_mib_per_second():
    assert agent_driver._speed(None) == agent_driver.UNLIMITED_MIBPS
    assert agent_driver._speed(15.6) == 16
    assert agent_driver._speed(0.3) == 1  # libvirt has nothing below 1 MiB/s


@pytest.mark.parametrize('code,cls', [
    (libvirt.VIR_ERR_SYSTEM_ERROR, exception.HypervisorUnavailable),
    (libvirt.VIR_ERR_RPC, exception.HypervisorUnavailable),
    (libvirt.VIR_ERR_INVALID_CONN, exception.HypervisorUnavailable),
    (libvirt.VIR_ERR_NO_DOMAIN, exception.DomainNotFound),
    (libvirt.VIR_ERR_NO_SUPPORT, exception.NotSupported),
    (libvirt.VIR_ERR_OPERATION_UNSUPPORTED, exception.NotSupported),
    (libvirt.VIR_ERR_INVALID_ARG, exception.InvalidRequest),
    (libvirt.VIR_ERR_OPERATION_INVALID, exception.InvalidRequest),
    (libvirt.VIR_ERR_OPERATION_FAILED, exception.OperationFailed),
    (libvirt.VIR_ERR_INTERNAL_ERROR, exception.OperationFailed),
])
def test_every_libvirt_error_maps_to_an_agent_error(code, cls):
    err = agent_driver.translate(_error(code, 'libvirt says no'), 'doing it')
    assert type(err) is cls
    assert 'doing it' in str(err) and 'libvirt says no' in str(err)


def test_no_migration_is_told_apart():
    for text in ('domain is not being migrated', 'no job is active on the domain',
                 'post-copy can only be started while outgoing migration is in progress'):
        err = agent_driver.translate(_error(libvirt.VIR_ERR_OPERATION_INVALID, text), 'x')
        assert isinstance(err, exception.NoMigration), text


def test_reconnects_when_libvirtd_drops_the_connection():
    opened = []

    def opener(uri):
        conn = libvirt.open(uri)
        opened.append(conn)
        return conn

    drv = agent_driver.LibvirtDriver(TEST_URI, opener=opener)
    assert len(drv.list_domains()) == 1
    opened[0].close()  # as when libvirtd restarts
    assert len(drv.list_domains()) == 1
    assert len(opened) == 2
    drv.close()


def test_a_connection_error_mid_call_is_retried_once_on_a_new_connection():
    drv = agent_driver.LibvirtDriver(TEST_URI)
    calls = []

    def flaky(conn):
        calls.append(conn)
        if len(calls) == 1:
            raise _error(libvirt.VIR_ERR_SYSTEM_ERROR, 'Cannot write data: Broken pipe')
        return 'ok'

    assert drv._call('a call', flaky) == 'ok'
    assert len(calls) == 2 and calls[0] is not calls[1]

    def down(conn):
        raise _error(libvirt.VIR_ERR_RPC, 'connection closed')

    with pytest.raises(exception.HypervisorUnavailable, match='unreachable'):
        drv._call('a call', down)
    drv.close()


def test_an_unreachable_libvirtd_is_hypervisor_unavailable(tmp_path):
    drv = agent_driver.LibvirtDriver(f'qemu+unix:///system?socket={tmp_path}/none')
    with pytest.raises(exception.HypervisorUnavailable, match='cannot connect'):
        drv.list_domains()


def test_job_statistics_in_agent_units():
    mib = 1024 * 1024
    stats = agent_driver.job_stats({
        'type': libvirt.VIR_DOMAIN_JOB_UNBOUNDED, 'memory_total': 128 * mib,
        'memory_processed': 40 * mib, 'memory_remaining': 90 * mib,
        'data_processed': 41 * mib, 'memory_bps': 16 * mib, 'memory_dirty_rate': 1536,
        'memory_page_size': 4096, 'memory_iteration': 2, 'time_elapsed': 2500,
    }, libvirt.VIR_DOMAIN_RUNNING, 0)
    assert stats['active'] and stats['type'] == 'unbounded'
    assert stats['memory_remaining_mib'] == 90 and stats['throughput_mibps'] == 16
    assert stats['dirty_rate_mibps'] == 6 and stats['iteration'] == 2
    assert stats['time_elapsed_s'] == 2.5 and not stats['postcopy']
    post = agent_driver.job_stats({'type': libvirt.VIR_DOMAIN_JOB_UNBOUNDED},
                                  libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_POSTCOPY)
    assert post['postcopy'] and post['paused']
    assert not agent_driver.job_stats({'type': libvirt.VIR_DOMAIN_JOB_NONE}, 1, 0)['active']
