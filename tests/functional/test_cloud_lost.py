"""The cloud goes away mid-job: what the API says of the job and of its members.

slm-sim-cloud, slm-engine and slm-api as processes on the real RabbitMQ and
MariaDB (tests/functional/service_helpers.py); the cloud process is killed
while every member migrates. The job must end (failed, with the reason), no
member may stay ``migrating`` for good in the API's view (nobody watches it
any more: ``unknown``, with an event saying what it was last seen doing), and
a new request answers 503 with the reason while the cloud is gone.
"""

from __future__ import annotations

import pytest

from tests.functional.service_helpers import Deployment, wait_for

pytestmark = [pytest.mark.functional, pytest.mark.timeout(240)]

WEB = ('web-1', 'web-2', 'web-3')


@pytest.fixture
def deployment(tmp_path, rabbit_url, mariadb_url):
    d = Deployment(tmp_path, rabbit_url, mariadb_url,
                   engine={'max_interruptions': '2'},
                   simulation={'speed': '2', 'call_timeout': '2'})
    try:
        yield d
    finally:
        d.stop_all()
        print(d.all_tails())  # shown when the test failed


def test_a_job_whose_cloud_dies_ends_and_reports_its_members_truthfully(deployment):
    d = deployment
    d.start_services()
    status, body = d.create('web')
    assert status == 202, body
    job_id = body['group_migration']['id']
    wait_for(lambda: all(m['state'] == 'migrating' for m in d.show(job_id)['members']), 30,
             what='every member to migrate')

    assert d.kill('sim-cloud') == -9
    final = d.wait_final(job_id, timeout=90)
    assert final['status'] == 'failed', final
    assert 'interrupted 2 times' in final['error']
    assert 'The simulated cloud (slm-sim-cloud on topic' in final['error'], final['error']
    assert [m['state'] for m in final['members']] == ['unknown'] * 3, final['members']
    assert final['switchover']['done'] is True
    events = d.events(job_id)
    unknown = [e for e in events if e['kind'] == 'member.unknown']
    assert sorted(e['member'] for e in unknown) == list(WEB)
    assert all(e['detail']['was'] == 'migrating' for e in unknown)
    assert events[-1]['kind'] == 'job.failed'

    # and a new request, while the cloud is gone: 503 with the reason, nothing created
    status, body = d.create('db')
    assert status == 503, body
    assert 'slm-sim-cloud' in body['error']['message']
    status, body = d.http('GET', '/v1/group-migrations')
    assert [j['id'] for j in body['group_migrations']] == [job_id]
