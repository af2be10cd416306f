"""alembic environment of the SLM database.

slm_plugin.db.migration passes an open connection in ``config.attributes``;
the alembic command line (see slm_plugin/db/alembic.ini) passes a URL.
"""

import logging.config

import sqlalchemy as sa
from alembic import context

from slm_plugin.db import models

config = context.config
target_metadata = models.Base.metadata

# Only the alembic command line has a file with logging settings; services keep
# the logging oslo.log set up.
if config.config_file_name is not None and config.attributes.get('connection') is None:
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)


def _configure(**kwargs):
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        **kwargs,
    )


def run_migrations_offline():
    """Write the SQL to stdout instead of running it (``alembic upgrade --sql``)."""
    _configure(url=config.get_main_option('sqlalchemy.url'), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def _run_on(connection):
    # SQLite cannot alter most things in place; batch mode copies the table.
    _configure(connection=connection, render_as_batch=connection.dialect.name == 'sqlite')
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    connection = config.attributes.get('connection')
    if connection is not None:
        _run_on(connection)
        return
    engine = sa.create_engine(config.get_main_option('sqlalchemy.url'), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            _run_on(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
