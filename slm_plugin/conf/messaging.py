"""oslo.messaging defaults: SLM's exchange, and an in-process bus for the demo."""

import importlib

import oslo_messaging
from oslo_config import cfg
from oslo_messaging import transport as messaging_transport

CONTROL_EXCHANGE = 'slm'
DEFAULT_TRANSPORT_URL = 'fake://'


def register_opts(conf):
    """Scope SLM's topics in its own exchange and default to the in-process bus.

    ``fake://`` lets the demo run engine and agents in one process without a
    broker; every real deployment sets ``[DEFAULT] transport_url``. The
    defaults are set on ``conf``, not on oslo.messaging's option objects,
    which every configuration of the process shares (Nova's, where both run
    in one process); ``set_lib_defaults`` shows them in the sample file.
    """
    conf.register_opts(messaging_transport._transport_opts)
    conf.set_default('transport_url', DEFAULT_TRANSPORT_URL)
    conf.set_default('control_exchange', CONTROL_EXCHANGE)
    _register_global_only_opts(conf)


def set_lib_defaults():
    """For oslo-config-generator (``oslo.config.opts.defaults``): SLM's bus defaults."""
    oslo_messaging.set_transport_defaults(control_exchange=CONTROL_EXCHANGE)
    cfg.set_defaults(messaging_transport._transport_opts, transport_url=DEFAULT_TRANSPORT_URL)


# (module, attribute, group) of oslo.messaging options that it registers on
# the global CONF only but reads from the transport's configuration; the same
# list as its ConfFixture.
_GLOBAL_ONLY_OPTS = (
    ('oslo_messaging._metrics.client', 'oslo_messaging_metrics', 'oslo_messaging_metrics'),
    ('oslo_messaging._tracing.client', 'oslo_messaging_tracing', 'oslo_messaging_tracing'),
)


def _register_global_only_opts(conf):
    """Make a ConfigOpts other than the global one (a tool's, a test's) usable.

    Without these, sending an RPC with such a configuration fails with
    NoSuchOptError (oslo.messaging 18).
    """
    for module_name, attribute, group in _GLOBAL_ONLY_OPTS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:  # a release without it
            continue
        conf.register_opts(getattr(module, attribute), group=group)


def list_opts():
    """Nothing: oslo.messaging lists its options under its own generator namespace."""
    return []
