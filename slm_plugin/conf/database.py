"""[database] options: oslo.db's, with a default that works without a server."""

from oslo_config import cfg
from oslo_db import options as db_options

DEFAULT_CONNECTION = 'sqlite:///slm.sqlite'


def register_opts(conf):
    """Register oslo.db's options with SLM's default connection.

    The default keeps the demo self-contained; deployments point ``connection``
    at MariaDB, e.g. ``mysql+pymysql://slm:secret@db.example.com/slm``. It is
    set on ``conf``, not on oslo.db's option objects, which every configuration
    of the process shares (Nova's, where both run in one process);
    ``set_lib_defaults`` shows it in the generated sample file.
    """
    conf.register_opts(db_options.database_opts, group='database')
    conf.set_default('connection', DEFAULT_CONNECTION, group='database')


def set_lib_defaults():
    """For oslo-config-generator (``oslo.config.opts.defaults``): SLM's database default."""
    cfg.set_defaults(db_options.database_opts, connection=DEFAULT_CONNECTION)


def list_opts():
    """Nothing: oslo.db lists its options under its own generator namespace."""
    return []
