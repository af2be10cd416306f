"""Entry point of the ``slm_plugin`` namespace for oslo-config-generator.

oslo.messaging, oslo.log and oslo.db list their own options under their own
namespaces (see etc/slm/slm-config-generator.conf); they are not repeated here.
"""

import slm_plugin.conf


def list_opts():
    """Return [(group, [opt, ...]), ...] for every option SLM itself defines."""
    result = []
    for module in slm_plugin.conf.MODULES:
        result.extend(module.list_opts())
    return result
