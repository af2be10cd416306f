"""[database] options: oslo.db's, with a default that works without a server."""

from oslo_config import cfg
from oslo_db import options as db_options

DEFAULT_CONNECTION = 'sqlite:///slm.sqlite'


def register_opts(conf):
    """Register oslo.db's options with SLM's default connection.

    The default keeps the demo self-contained; deployments point ``connection``
    at MariaDB, e.g. ``mysql+pymysql://slm:secret@db.example.com/slm``. It is
    set on the option itself rather than on ``conf`` so that the generated
    sample file shows the default SLM really uses.
    """
    cfg.set_defaults(db_options.database_opts, connection=DEFAULT_CONNECTION)
    conf.register_opts(db_options.database_opts, group='database')


def list_opts():
    """Nothing: oslo.db lists its options under its own generator namespace."""
    return []
