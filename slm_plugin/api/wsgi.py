"""Entry point for WSGI servers: ``slm_plugin.api.wsgi:init_application()``.

The configuration comes from the default places (``/etc/slm/slm.conf``) or
from the files named in ``SLM_CONFIG_FILES`` (comma-separated).
"""

import os

from oslo_log import log as logging

import slm_plugin.conf
from slm_plugin.api.app import build_app
from slm_plugin.conf import JOB_FORMAT


def init_application():
    conf = slm_plugin.conf.CONF
    files = [f for f in os.environ.get('SLM_CONFIG_FILES', '').split(',') if f]
    logging.register_options(conf)
    conf.set_default('instance_uuid_format', JOB_FORMAT)
    conf([], project='slm', default_config_files=files or None)
    logging.setup(conf, 'slm-api')
    return build_app(conf)
