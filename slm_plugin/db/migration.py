"""Schema migrations of the SLM database, run with alembic from code.

slm-manage and the functional tests call these with a connection URL; the
``alembic`` command line needs slm_plugin/db/alembic.ini only to write new
revisions.
"""

import os

import sqlalchemy as sa
from alembic import command
from alembic import config as alembic_config
from alembic import migration as alembic_migration
from alembic import script as alembic_script
from oslo_db.sqlalchemy import engines
from oslo_log import log as logging

LOG = logging.getLogger(__name__)

ALEMBIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'alembic')


def _config(connection=None):
    config = alembic_config.Config()
    config.set_main_option('script_location', ALEMBIC_DIR)
    config.attributes['connection'] = connection
    return config


def _engine(url):
    # oslo.db's engine: the same SQL mode and SQLite foreign keys as the services.
    return engines.create_engine(url, sqlite_fk=True, mysql_sql_mode='TRADITIONAL')


def _run(url, action, revision):
    engine = _engine(url)
    try:
        with engine.begin() as connection:
            action(_config(connection), revision)
    finally:
        engine.dispose()


def upgrade(url, revision='head'):
    """Bring the schema at url up to revision (the newest by default).

    A SQLite file is also put in write-ahead logging mode, once for good.
    """
    LOG.info('Upgrading database schema to %s', revision)
    _run(url, command.upgrade, revision)
    if str(url).startswith('sqlite'):
        from slm_plugin.db.manager import set_sqlite_wal
        engine = _engine(url)
        try:
            set_sqlite_wal(engine)
        finally:
            engine.dispose()


def downgrade(url, revision='base'):
    """Take the schema at url down to revision; ``base`` drops every SLM table."""
    LOG.info('Downgrading database schema to %s', revision)
    _run(url, command.downgrade, revision)


def version(url):
    """The revision the schema at url is at, or None before the first upgrade."""
    engine = _engine(url)
    try:
        with engine.connect() as connection:
            return alembic_migration.MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head():
    """The newest revision this code knows."""
    return alembic_script.ScriptDirectory.from_config(_config()).get_current_head()


def table_names(url):
    """Names of the tables at url; for checks and tests."""
    engine = _engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
