"""The embedded default, SQLite: write-ahead logging set once per file, never a 500 for it.

``PRAGMA journal_mode = WAL`` used to run on every new connection. Switching
a file into WAL takes SQLite's exclusive lock without waiting for the busy
timeout, so a connection opened while another one was reading answered
"database is locked" (a create answered 500 in the concurrency test). The
mode belongs to the file: it is set by ``slm-manage db upgrade`` (and when a
service opens the database, if it can), connections only set their busy
timeout. Real SQLite files, the real WSGI application; the other reader is
a plain sqlite3 connection, as another process would be.
"""

import sqlite3

import pytest

from slm_plugin.db import api as db
from slm_plugin.db import migration
from slm_plugin.db.manager import database_manager
from tests.functional.test_api import Client, _conf

pytestmark = [pytest.mark.functional, pytest.mark.timeout(120)]


def _mode(path):
    with sqlite3.connect(path) as conn:
        return conn.execute('PRAGMA journal_mode').fetchone()[0]


def test_the_upgrade_puts_the_file_in_wal_mode(tmp_path):
    path = tmp_path / 'slm.sqlite'
    migration.upgrade(f'sqlite:///{path}')
    assert _mode(path) == 'wal'


def test_a_new_connection_beside_a_reader_is_no_500(tmp_path):
    path = tmp_path / 'slm.sqlite'
    url = f'sqlite:///{path}'
    migration.upgrade(url)
    # a file in the rollback journal mode (made by an older release, or copied)
    with sqlite3.connect(path) as conn:
        conn.execute('PRAGMA journal_mode = DELETE')
    reader = sqlite3.connect(path, isolation_level=None)
    try:
        reader.execute('BEGIN')
        reader.execute('SELECT count(*) FROM jobs').fetchone()  # holds the shared lock
        client = Client(_conf(tmp_path, url), url)
        try:
            status, body = client('GET', '/v1/group-migrations')
            assert status == 200, body
            reader.execute('COMMIT')  # the create must wait for no one but writers
            status, body = client.create(group='web')
            assert status == 202, body
            assert len(db.list_jobs(client.context())) == 1
        finally:
            client.db.dispose_pool()
    finally:
        reader.close()
    assert _mode(path) == 'delete'  # the reader kept it from switching; nothing failed
    # the next service to open it, alone, switches it for good
    manager = database_manager(_conf(tmp_path, url))
    manager.dispose_pool()
    assert _mode(path) == 'wal'
