"""Job leases follow the database's clock, not the engine hosts' (on SQLite and MariaDB).

An engine whose clock runs an hour ahead must not take a lease that is still held,
and one whose clock runs an hour behind must still take a lease that has expired.
The engine's clock is moved with oslo.utils' own override (``set_time_override``),
which every ``timeutils.utcnow()`` of the process obeys.
"""

from __future__ import annotations

import datetime
import time

import pytest
from oslo_utils import timeutils

from slm_plugin import context as slm_context
from slm_plugin.db import api as db_api
from slm_plugin.db import coordination, migration

pytestmark = pytest.mark.functional


@pytest.fixture
def ctxt(db_url):
    migration.upgrade(db_url)
    manager = db_api.create_context_manager(db_url)
    yield slm_context.get_admin_context(db_connection=manager)
    manager.dispose_pool()


@pytest.fixture
def skewed():
    """Move this process's clock (as engines see it) by a timedelta; restored afterwards."""
    def skew(delta: datetime.timedelta):
        timeutils.set_time_override(datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
                                    + delta)
    yield skew
    timeutils.clear_time_override()


def _job(ctxt):
    return coordination.create_job(
        ctxt, {'server_group_id': 'g-1', 'server_group_name': 'web',
               'strategy': 'synchronized', 'request': {'group': 'web'}},
        [{'name': 'web-1', 'server_id': 's-1', 'source_host': 'a-1'}])


def test_an_engine_with_a_clock_ahead_does_not_take_a_held_lease(ctxt, skewed):
    job = _job(ctxt)
    assert coordination.claim_job(ctxt, job.id, 'engine-a', 60) is not None

    skewed(datetime.timedelta(hours=1))  # engine-b's clock: an hour ahead

    assert job.id not in coordination.claimable_jobs(ctxt, 10)
    assert coordination.claim_job(ctxt, job.id, 'engine-b', 60) is None
    held, _ = coordination.renew_lease(ctxt, job.id, 'engine-a', 60)
    assert held


def test_an_engine_with_a_clock_behind_takes_an_expired_lease(ctxt, skewed):
    job = _job(ctxt)
    assert coordination.claim_job(ctxt, job.id, 'engine-a', 1) is not None
    time.sleep(1.5)  # the lease expires by the database's clock

    skewed(datetime.timedelta(hours=-1))  # engine-b's clock: an hour behind

    assert job.id in coordination.claimable_jobs(ctxt, 10)
    claimed = coordination.claim_job(ctxt, job.id, 'engine-b', 60)
    assert claimed is not None
    assert claimed[1] == 'engine-a'
    # and engine-a, whatever its clock, has lost it
    held, _ = coordination.renew_lease(ctxt, job.id, 'engine-a', 60)
    assert not held
