"""oslo.messaging defaults: SLM's exchange, and an in-process bus for the demo."""

import oslo_messaging
from oslo_config import cfg
from oslo_messaging import transport as messaging_transport

CONTROL_EXCHANGE = 'slm'
DEFAULT_TRANSPORT_URL = 'fake://'


def register_opts(conf):
    """Scope SLM's topics in its own exchange and default to the in-process bus.

    ``fake://`` lets the demo run engine and agents in one process without a
    broker; every real deployment sets ``[DEFAULT] transport_url``. The
    defaults are set on the options themselves, as set_transport_defaults()
    does for the exchange, so that the generated sample file shows them.
    """
    oslo_messaging.set_transport_defaults(control_exchange=CONTROL_EXCHANGE)
    cfg.set_defaults(
        messaging_transport._transport_opts, transport_url=DEFAULT_TRANSPORT_URL
    )
    conf.register_opts(messaging_transport._transport_opts)


def list_opts():
    """Nothing: oslo.messaging lists its options under its own generator namespace."""
    return []
