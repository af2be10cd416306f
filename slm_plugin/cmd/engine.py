"""slm-engine: runs the migration jobs (see slm_plugin.engine.service).

    slm-engine --config-file /etc/slm/slm.conf

SIGTERM or SIGINT stops it cleanly: its jobs are left, their migrations
untouched, to the other engines (or to this one when it starts again).
"""

import sys

from oslo_log import log as logging

from slm_plugin.cmd import daemon
from slm_plugin.engine.service import EngineService

LOG = logging.getLogger(__name__)


def main(argv=None) -> int:
    conf = daemon.prepare(argv, 'slm-engine')
    try:
        service = EngineService(conf)
    except ValueError as exc:
        LOG.error('Cannot start: %s', exc)
        return 2
    service.start()
    signum = daemon.wait_for_signal()
    LOG.info('Signal %d: stopping', signum)
    service.stop()
    return 0


if __name__ == '__main__':
    sys.exit(main())
