"""Fixtures shared by the functional tests: the real RabbitMQ and MariaDB.

The services are expected on 127.0.0.1 (tools/services.sh starts them); set
SLM_TEST_RABBIT_URL or SLM_TEST_MARIADB_URL to use others. A service that does
not answer fails the tests that need it, with the reason: a skipped functional
test would hide a broken environment.
"""

import os
import uuid

import pytest
import sqlalchemy as sa

RABBIT_URL = os.environ.get('SLM_TEST_RABBIT_URL', 'rabbit://guest:guest@127.0.0.1:5672/')
MARIADB_URL = os.environ.get('SLM_TEST_MARIADB_URL', 'mysql+pymysql://root@127.0.0.1:3306')
CONNECT_TIMEOUT = 5

# Nova's test code reconfigures the interpreter on import (threading backend, oslo.config,
# logging, RPC): tests/functional/test_nova.py runs tests/functional/nova in a pytest
# process of its own, which sets SLM_NOVA_TESTS.
if not os.environ.get('SLM_NOVA_TESTS'):
    collect_ignore = ['functional/nova']

_HOW_TO_START = 'Start the services with tools/services.sh (as root) and run the tests again.'


@pytest.fixture(scope='session')
def rabbit_url():
    """URL of a RabbitMQ that answers, for oslo.messaging's rabbit driver."""
    import kombu

    amqp_url = 'amqp://' + RABBIT_URL.split('://', 1)[1]
    connection = kombu.Connection(amqp_url, connect_timeout=CONNECT_TIMEOUT)
    try:
        connection.ensure_connection(max_retries=1, timeout=CONNECT_TIMEOUT)
    except Exception as exc:
        pytest.fail(f'RabbitMQ does not answer at {RABBIT_URL}: {exc}. {_HOW_TO_START}',
                    pytrace=False)
    finally:
        connection.release()
    return RABBIT_URL


@pytest.fixture(scope='session')
def mariadb_server_url():
    """URL of the MariaDB server (no database) after checking that it answers."""
    engine = sa.create_engine(MARIADB_URL, poolclass=sa.pool.NullPool,
                              connect_args={'connect_timeout': CONNECT_TIMEOUT})
    try:
        with engine.connect() as connection:
            connection.execute(sa.text('SELECT 1'))
    except Exception as exc:
        pytest.fail(f'MariaDB does not answer at {MARIADB_URL}: {exc}. {_HOW_TO_START}',
                    pytrace=False)
    finally:
        engine.dispose()
    return MARIADB_URL


@pytest.fixture
def mariadb_url(mariadb_server_url):
    """URL of a new, empty MariaDB database of this test; dropped afterwards."""
    name = f'slm_test_{uuid.uuid4().hex[:12]}'
    engine = sa.create_engine(mariadb_server_url, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE `{name}` CHARACTER SET utf8mb4'))
    try:
        yield f'{mariadb_server_url}/{name}?charset=utf8mb4'
    finally:
        with engine.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS `{name}`'))
        engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path):
    """URL of a new SQLite database file of this test."""
    return f'sqlite:///{tmp_path / "slm.sqlite"}'


@pytest.fixture(params=['sqlite', 'mariadb'])
def db_url(request):
    """Each test using it runs once on SQLite and once on MariaDB."""
    return request.getfixturevalue(f'{request.param}_url')
