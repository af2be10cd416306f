"""Registering a group of options on one ConfigOpts."""

from oslo_config import cfg


def register(conf, group: cfg.OptGroup, opts) -> None:
    """Register ``opts`` in a copy of ``group`` of ``conf``'s own.

    An OptGroup keeps the overrides of the options registered in it, so one
    shared by two ConfigOpts of a process (a test's and a tool's, SLM's beside
    Nova's) would share their overrides.
    """
    own = cfg.OptGroup(group.name, title=group.title, help=group.help)
    conf.register_group(own)
    conf.register_opts(opts, group=own)
