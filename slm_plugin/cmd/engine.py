"""slm-engine: runs the migration jobs (see slm_plugin.engine.service).

    slm-engine --config-file /etc/slm/slm.conf

SIGTERM or SIGINT stops it cleanly: its jobs are left, their migrations
untouched, to the other engines (or to this one when it starts again).
"""

import sys

from slm_plugin.cmd import daemon
from slm_plugin.engine.service import EngineService


def main(argv=None) -> int:
    return daemon.serve(argv, 'slm-engine', EngineService)


if __name__ == '__main__':
    sys.exit(main())
