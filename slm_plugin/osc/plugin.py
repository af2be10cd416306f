"""The python-openstackclient plugin module (entry point ``openstack.cli.extension``).

osc loads the commands of ``openstack.slm.v<N>`` for ``--os-slm-api-version N``
and builds the client on first use, from the session and catalog of the
``--os-*`` options: authentication, TLS, region and interface work as for
every other service.
"""

from __future__ import annotations

import logging

from keystoneauth1 import exceptions as ks_exceptions
from osc_lib import exceptions, utils

from slm_plugin.osc import SERVICE_TYPE

LOG = logging.getLogger(__name__)

DEFAULT_API_VERSION = '1'
API_NAME = SERVICE_TYPE
API_VERSION_OPTION = 'os_slm_api_version'
API_VERSIONS = {'1': 'slm_plugin.osc.v1.client.Client'}


def make_client(instance):
    """The SLM client of osc's client manager, on the endpoint the catalog names."""
    version = instance._api_version[API_NAME]
    client_class = utils.get_client_class(API_NAME, version, API_VERSIONS)
    try:
        endpoint = instance.get_endpoint_for_service_type(
            SERVICE_TYPE, region_name=instance.region_name, interface=instance.interface)
    except ks_exceptions.EndpointNotFound:
        endpoint = None
    if not endpoint:
        region = f' in region {instance.region_name}' if instance.region_name else ''
        raise exceptions.CommandError(
            f'No {SERVICE_TYPE} endpoint (interface {instance.interface or "public"}) '
            f'in the service catalog{region}: register slm-api in Keystone with service '
            f'type {SERVICE_TYPE!r}, or set OS_SLM_ENDPOINT_OVERRIDE.')
    LOG.debug('Instantiating SLM client %s on %s', client_class, endpoint)
    return client_class(instance.session, endpoint, region_name=instance.region_name,
                        interface=instance.interface)


def build_option_parser(parser):
    """Add ``--os-slm-api-version`` to the global options."""
    parser.add_argument(
        '--os-slm-api-version',
        metavar='<slm-api-version>',
        default=utils.env('OS_SLM_API_VERSION', default=DEFAULT_API_VERSION),
        help=f'SLM API version, default={DEFAULT_API_VERSION} (Env: OS_SLM_API_VERSION)')
    return parser
