"""Fixtures of the real-QEMU tests: two libvirtd hosts with private state, torn down by PID.

tools/test.sh runs tools/e2e-setup.sh first (QEMU 10 and libvirt 11 from
bookworm-backports, the guest kernel and initramfs). Where those are missing the
tests fail and say how to get them: a skipped end-to-end test would hide a
broken environment.
"""

import shutil

import pytest

from tests.e2e import harness


@pytest.fixture(scope='session')
def e2e_ready():
    reason = harness.missing()
    if reason:
        pytest.fail(f'cannot run the real-QEMU tests: {reason}', pytrace=False)


@pytest.fixture(scope='module')
def testbed(e2e_ready, tmp_path_factory):
    base = tmp_path_factory.mktemp('hosts', numbered=True)
    bed = harness.Testbed(base)
    bed.start()
    try:
        yield bed
    finally:
        bed.stop()
        shutil.rmtree(base, ignore_errors=True)
