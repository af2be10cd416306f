"""What slm-api, slm-engine and slm-sim-cloud share: configuration, logging, signals."""

from __future__ import annotations

import signal
import sys
import threading

from oslo_log import log as logging

import slm_plugin.conf
from slm_plugin.conf import JOB_FORMAT

CONF = slm_plugin.conf.CONF
LOG = logging.getLogger(__name__)


def prepare(argv, prog: str):
    """Parse the command line and configuration files; set up logging. The configuration."""
    logging.register_options(CONF)
    CONF.set_default('instance_uuid_format', JOB_FORMAT)
    CONF(sys.argv[1:] if argv is None else argv, project='slm', prog=prog)
    logging.setup(CONF, prog)
    return CONF


def wait_for_signal() -> int:
    """Block until SIGTERM or SIGINT; the signal number."""
    got = threading.Event()
    caught = []

    def handler(signum, frame):
        caught.append(signum)
        got.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)
    while not got.wait(1.0):
        pass
    return caught[0]


def serve(argv, prog: str, make_service) -> int:
    """Run a service until SIGTERM or SIGINT: 2 when its configuration is unusable."""
    conf = prepare(argv, prog)
    try:
        service = make_service(conf)
    except ValueError as exc:
        LOG.error('Cannot start: %s', exc)
        return 2
    service.start()
    signum = wait_for_signal()
    LOG.info('Signal %d: stopping', signum)
    service.stop()
    return 0
