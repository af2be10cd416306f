"""The service's database: one transaction context manager per process, per ``[database]``.

slm-api and slm-engine both build theirs here, so that the SQLite of the embedded
default gets the same pragmas and write discipline in every process.
"""

from __future__ import annotations

import sqlite3

from oslo_log import log as logging
from sqlalchemy import event as sa_event

from slm_plugin.db import api as db

LOG = logging.getLogger(__name__)


def database_manager(conf):
    """A transaction context manager of the service's own for ``[database] connection``."""
    d = conf.database
    if d.connection.startswith('sqlite'):
        # readers on an engine of their own, so that only writers queue (see below)
        manager = db.create_context_manager(d.connection, slave_connection=d.connection,
                                            synchronous_reader=False)
        writer = manager.writer.get_engine()
        reader = manager.reader.get_engine()
        set_sqlite_wal(writer)  # before the pools open connections, which then find it
        for engine in {writer, reader}:
            _sqlite_pragmas(engine)
        _one_writer_at_a_time(writer)
        return manager
    return db.create_context_manager(
        d.connection, max_pool_size=d.max_pool_size, max_overflow=d.max_overflow,
        pool_timeout=d.pool_timeout, connection_recycle_time=d.connection_recycle_time,
        max_retries=d.max_retries)


SQLITE_BUSY_TIMEOUT_MS = 30000
SQLITE_WAL_SWITCH_TIMEOUT_S = 1.0


def set_sqlite_wal(engine) -> str:
    """Put the database file in write-ahead logging mode; the mode it is in after.

    WAL lets readers go on while a writer writes, and a commit costs one fsync.
    The mode belongs to the file, not to a connection: set once here (by
    ``slm-manage db upgrade`` and when a service opens the database), never
    per connection, where switching, which needs the file to itself, answered
    "database is locked" to a connection opened while another one read. If
    another connection holds the file meanwhile, the services still work (in
    the rollback journal mode, slower) and the next start sets it.
    """
    path = engine.url.database
    if not path or path == ':memory:' or path.startswith('file:'):
        return 'memory'
    # a connection of its own, outside the pools, with a short wait: an optimisation
    conn = sqlite3.connect(path, timeout=SQLITE_WAL_SWITCH_TIMEOUT_S, isolation_level=None)
    try:
        mode = conn.execute('PRAGMA journal_mode').fetchone()[0]
        if mode.lower() != 'wal':
            try:
                mode = conn.execute('PRAGMA journal_mode = WAL').fetchone()[0]
            except sqlite3.OperationalError as exc:
                LOG.warning('SQLite database %s left in journal mode %s for now: %s', path,
                            mode, exc)
        return mode.lower()
    finally:
        conn.close()


def _sqlite_pragmas(engine):
    """Per connection: wait for the lock up to the busy timeout; one fsync per commit (WAL)."""
    @sa_event.listens_for(engine, 'connect')
    def _pragmas(dbapi_connection, record):
        dbapi_connection.execute(f'PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}')
        dbapi_connection.execute('PRAGMA synchronous = NORMAL')


def _one_writer_at_a_time(engine):
    """SQLite, for many threads: take the write lock when a transaction begins.

    A deferred transaction that reads, then writes, fails at once ("database
    is locked") when another one holds the write lock, and most of ours read
    before they write (check a state, then change it). Beginning them all
    IMMEDIATE makes them queue for the lock instead, up to the busy timeout.
    Writers serialise on the database; that is the embedded default's price,
    MariaDB has no such limit.
    """
    @sa_event.listens_for(engine, 'begin')
    def _begin_immediate(conn):
        # after oslo.db's own BEGIN, which is deferred and has locked nothing yet
        if not conn.info.get('slm_immediate'):
            conn.exec_driver_sql('COMMIT')
            conn.exec_driver_sql('BEGIN IMMEDIATE')
            conn.info['slm_immediate'] = True

    @sa_event.listens_for(engine, 'commit')
    @sa_event.listens_for(engine, 'rollback')
    def _end(conn):
        conn.info.pop('slm_immediate', None)
