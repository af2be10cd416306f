"""SLM configuration: ``CONF`` with the options of every SLM component registered.

Modules read options from ``slm_plugin.conf.CONF`` so that importing this package
is all it takes to have every option registered, as in Nova and Watcher.
"""

from oslo_config import cfg

from slm_plugin.conf import (
    agent,
    api,
    database,
    engine,
    maintenance,
    messaging,
    nova,
    planning,
    service,
    simulation,
)

# SLM's own ConfigOpts rather than oslo.config's global one: SLM's code shares a
# process with Nova's in places (the tests that run Nova in-process, tooling on
# a compute host), and Nova registers options of the same names (``host``)
# differently on the global object.
CONF = cfg.ConfigOpts()

# oslo.log prints a context's resource_uuid with this format: the engine puts
# the job id there, so every log line of a job's thread names the job.
JOB_FORMAT = '[job %(uuid)s] '

# Order matters only for the sample file, which follows opts.list_opts().
MODULES = (service, api, engine, agent, planning, maintenance, database, messaging, simulation,
           nova)


def register_opts(conf):
    """Register every SLM option (and SLM's defaults for library options) on conf."""
    for module in MODULES:
        module.register_opts(conf)


register_opts(CONF)
