"""Entry point of the ``slm_plugin`` namespace for oslo-config-generator.

oslo.messaging, oslo.log and oslo.db list their own options under their own
namespaces (see etc/slm/slm-config-generator.conf); they are not repeated here.
"""

import slm_plugin.conf
from slm_plugin.conf import database, messaging


def list_opts():
    """Return [(group, [opt, ...]), ...] for every option SLM itself defines."""
    result = []
    for module in slm_plugin.conf.MODULES:
        result.extend(module.list_opts())
    return result


def set_lib_defaults():
    """``oslo.config.opts.defaults``: SLM's defaults of library options, for the sample file.

    The generator runs this in its own process before it lists the libraries'
    namespaces; at run time the same defaults are set per configuration.
    """
    database.set_lib_defaults()
    messaging.set_lib_defaults()
