"""slm-manage: administration of an SLM deployment, in the manner of nova-manage.

    slm-manage --config-file /etc/slm/slm.conf db upgrade [REVISION]
    slm-manage --config-file /etc/slm/slm.conf db downgrade REVISION
    slm-manage --config-file /etc/slm/slm.conf db version

The database is the one in ``[database] connection``.
"""

import sys

from oslo_config import cfg
from oslo_db import exception as db_exception
from oslo_log import log as logging

import slm_plugin.conf
from slm_plugin.db import migration

CONF = slm_plugin.conf.CONF
LOG = logging.getLogger(__name__)


class DbCommands:
    """Schema of the SLM database."""

    def upgrade(self, revision):
        migration.upgrade(CONF.database.connection, revision)
        print(f'Database schema is at {migration.version(CONF.database.connection)}.')

    def downgrade(self, revision):
        migration.downgrade(CONF.database.connection, revision)
        print(f'Database schema is at {migration.version(CONF.database.connection) or "base"}.')

    def version(self):
        print(migration.version(CONF.database.connection) or 'base')


def add_command_parsers(subparsers):
    db = DbCommands()
    parser = subparsers.add_parser('db', help=DbCommands.__doc__)
    actions = parser.add_subparsers(dest='action', required=True)

    upgrade = actions.add_parser('upgrade', help='Apply the migrations up to REVISION.')
    upgrade.add_argument('revision', nargs='?', default='head',
                         help='Target revision (default: head, the newest).')
    upgrade.set_defaults(run=lambda args: db.upgrade(args.revision))

    # No default: going down may drop tables, so the target must be named.
    downgrade = actions.add_parser(
        'downgrade', help='Revert the migrations down to REVISION; "base" drops every table.')
    downgrade.add_argument('revision', help='Target revision, e.g. "base".')
    downgrade.set_defaults(run=lambda args: db.downgrade(args.revision))

    version = actions.add_parser('version', help='Print the current revision.')
    version.set_defaults(run=lambda args: db.version())


category_opt = cfg.SubCommandOpt(
    'category', title='Command categories', handler=add_command_parsers)


def main(argv=None):
    CONF.register_cli_opt(category_opt)
    logging.register_options(CONF)
    # stdout carries the answers (a revision for ``db version``); logs go aside.
    CONF.set_default('use_stderr', True)
    CONF(sys.argv[1:] if argv is None else argv, project='slm', prog='slm-manage')
    logging.setup(CONF, 'slm-manage')
    try:
        CONF.category.run(CONF.category)
    except db_exception.DBError as exc:
        print(f'Database error on {CONF.database.connection}: {exc}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
