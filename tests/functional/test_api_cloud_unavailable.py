"""slm-api when the cloud does not answer: 503 with the reason, nothing stored or started.

Two clouds that are not there, each reached the way a deployment reaches it:
``[engine] cloud = simulated-rpc`` over the real RabbitMQ with no slm-sim-cloud
on its topic, and ``[engine] cloud = nova`` whose Keystone is a loopback port
where nothing listens (connection refused, as for a cloud that is down). The
real WSGI application on MariaDB; a recorder stands in for the engines' RPC
API, as in test_api.py.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
import webob

from slm_plugin.api.app import build_app
from slm_plugin.db import api as db
from slm_plugin.db import migration
from slm_plugin.db.manager import database_manager
from slm_plugin.nova.backend import NovaBackend
from slm_plugin.simulated.remote import RemoteSimulatedBackend
from tests.functional.service_helpers import free_port
from tests.functional.test_api import BASE, Announced, _conf

pytestmark = [pytest.mark.functional, pytest.mark.timeout(120)]


def _app(conf, url, driver):
    migration.upgrade(url)
    manager = database_manager(conf)
    announced = Announced()
    return build_app(conf, backend=driver, engine_api=announced, db_manager=manager), \
        manager, announced


def _post(app, fields):
    req = webob.Request.blank(BASE, method='POST')
    req.body = json.dumps({'group_migration': fields}).encode()
    req.content_type = 'application/json'
    return req.get_response(app)


def _check_refused(app, manager, announced, expected, fields=None):
    from slm_plugin import context as slm_context
    started = time.monotonic()
    response = _post(app, fields or {'group': 'web'})
    took = time.monotonic() - started
    assert response.status_int == 503, response.text
    error = response.json['error']
    assert error['code'] == 503 and error['title'] == 'Service Unavailable'
    assert expected in error['message'] and 'Nothing was started' in error['message']
    assert response.headers['Retry-After'] == '30'
    assert announced.jobs == []
    assert db.list_jobs(slm_context.get_admin_context(db_connection=manager)) == []
    return took


def test_no_simulated_cloud_on_the_bus_is_a_503(tmp_path, mariadb_url, rabbit_url):
    # auto-delete, as every test's: a lasting exchange of another kind fails the others
    conf = _conf(tmp_path, mariadb_url, DEFAULT={'transport_url': rabbit_url},
                 oslo_messaging_rabbit={'amqp_auto_delete': 'true'},
                 engine={'cloud': 'simulated-rpc'},
                 simulation={'topic': f'slm-sim-absent-{uuid.uuid4().hex[:8]}',
                             'call_timeout': '2'})
    driver = RemoteSimulatedBackend(conf)
    app, manager, announced = _app(conf, mariadb_url, driver)
    try:
        took = _check_refused(app, manager, announced, 'The simulated cloud (slm-sim-cloud on '
                                                       'topic slm-sim-absent-')
        assert took < 2 + 10
        # the jobs are in the database: listing them needs no cloud
        req = webob.Request.blank(f'{BASE}?group=web')
        assert req.get_response(app).status_int == 200
    finally:
        driver.close()
        manager.dispose_pool()


def test_a_compute_api_that_refuses_connections_is_a_503(tmp_path, mariadb_url):
    keystone = f'http://127.0.0.1:{free_port()}/v3'  # nothing listens there
    conf = _conf(tmp_path, mariadb_url, engine={'cloud': 'nova'}, nova={
        'auth_type': 'password', 'auth_url': keystone, 'username': 'slm',
        'password': 'secret', 'project_name': 'service', 'user_domain_name': 'Default',
        'project_domain_name': 'Default', 'retry_attempts': '1'})
    driver = NovaBackend(conf)
    app, manager, announced = _app(conf, mariadb_url, driver)
    try:
        took = _check_refused(app, manager, announced, 'The Compute API did not answer')
        assert took < 30
        # a dry run needs the cloud too, and says so the same way
        took = _check_refused(app, manager, announced, 'The Compute API did not answer',
                              {'group': 'web', 'options': {'dry_run': True}})
    finally:
        driver.close()
        manager.dispose_pool()
