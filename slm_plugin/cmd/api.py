"""slm-api: serve the REST API with the standard library's WSGI server, for development.

    slm-api --config-file /etc/slm/slm.conf

It listens on ``[api] bind_host`` and ``bind_port``, a thread per request.
In production run ``slm_plugin.api.wsgi:init_application()`` in a WSGI
server (uWSGI, mod_wsgi, gunicorn) instead.
"""

import socketserver
import sys
import threading
from wsgiref import simple_server

from oslo_log import log as logging

from slm_plugin.api.app import build_app
from slm_plugin.cmd import daemon

LOG = logging.getLogger(__name__)


class ThreadingWSGIServer(socketserver.ThreadingMixIn, simple_server.WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class QuietHandler(simple_server.WSGIRequestHandler):
    # socketserver sets it on the connection: every read from the client (request
    # line, headers, each part of the body) fails with TimeoutError after it
    timeout = 30.0

    def log_message(self, format, *args):
        LOG.debug('%s %s', self.address_string(), format % args)

    def handle(self):
        try:
            super().handle()
        except TimeoutError:  # before the application had the request: just close
            LOG.debug('%s sent no request within %.1f s; connection closed',
                      self.address_string(), self.timeout)


def make_server(app, host: str, port: int, timeout: float = QuietHandler.timeout):
    """A threaded WSGI server; timeout is ``[api] client_socket_timeout``."""
    handler = type('Handler', (QuietHandler,), {'timeout': timeout})
    return simple_server.make_server(host, port, app, server_class=ThreadingWSGIServer,
                                     handler_class=handler)


def main(argv=None) -> int:
    conf = daemon.prepare(argv, 'slm-api')
    try:
        app = build_app(conf)
    except ValueError as exc:
        LOG.error('Cannot start: %s', exc)
        return 2
    server = make_server(app, conf.api.bind_host, conf.api.bind_port,
                         timeout=conf.api.client_socket_timeout)
    host, port = server.server_address[:2]
    LOG.info('slm-api listening on http://%s:%d (auth: %s)', host, port,
             conf.api.auth_strategy)
    thread = threading.Thread(target=server.serve_forever, name='slm-api', daemon=True)
    thread.start()
    signum = daemon.wait_for_signal()
    LOG.info('Signal %d: stopping', signum)
    server.shutdown()
    server.server_close()
    return 0


if __name__ == '__main__':
    sys.exit(main())
