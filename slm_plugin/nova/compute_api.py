"""The Compute API as SLM uses it: the microversions it needs, negotiated explicitly.

SLM talks to Nova through openstacksdk with one microversion for every call,
chosen once per connection: the highest both Nova and SLM know, never below
what SLM needs.

=========  ==============================================================
``2.22``   ``force_complete`` of a running live migration
``2.23``   ``GET /servers/{id}/migrations`` with memory and disk progress
``2.24``   ``DELETE /servers/{id}/migrations/{id}``: abort a live migration
``2.25``   ``block_migration: "auto"``: Nova decides whether disks move
``2.30``   a host named in ``os-migrateLive`` is checked by the scheduler
           (SLM never forces a host)
``2.47``   the flavor (memory, disks) embedded in the server
``2.59``   migrations filtered by server, with their uuid
``2.64``   server group ``policy`` and ``rules`` (``max_server_per_host``)
=========  ==============================================================

So ``MIN_VERSION`` is 2.64 (Nova 19, Stein). Two later ones are used when
Nova offers them: 2.65 aborts a migration still queued or preparing (below
it only a running one can be aborted), and 2.96 shows a server's
``pinned_availability_zone``, which tells that the scheduler will refuse to
move it to another zone. ``MAX_VERSION`` is the newest SLM is tested with.
"""

from __future__ import annotations

from keystoneauth1 import discover

from slm_plugin import exception

MIN_VERSION = '2.64'
ABORT_QUEUED_VERSION = '2.65'
PINNED_AZ_VERSION = '2.96'
MAX_VERSION = '2.96'


def _tuple(version: str) -> tuple[int, int]:
    major, minor = discover.normalize_version_number(version)[:2]
    return int(major), int(minor)


def _text(version: tuple[int, int]) -> str:
    return f'{version[0]}.{version[1]}'


def choose(server_min: str | None, server_max: str | None) -> str:
    """The microversion to use with a Nova that offers server_min..server_max."""
    if not server_max:
        raise exception.NovaVersionError(
            'the Compute API does not announce microversions; SLM needs '
            f'at least {MIN_VERSION}')
    lo, hi = _tuple(MIN_VERSION), _tuple(MAX_VERSION)
    s_lo = _tuple(server_min) if server_min else (2, 1)
    s_hi = _tuple(server_max)
    if s_hi < lo:
        raise exception.NovaVersionError(
            f'the Compute API offers microversions up to {_text(s_hi)}; '
            f'SLM needs at least {MIN_VERSION} (Nova 19, Stein)')
    if s_lo > hi:
        raise exception.NovaVersionError(
            f'the Compute API offers microversions from {_text(s_lo)}; SLM '
            f'knows them up to {MAX_VERSION}')
    return _text(min(hi, s_hi))


def negotiate(conn) -> str:
    """Choose the microversion for ``conn`` and make it the default of every compute call."""
    data = conn.compute.get_endpoint_data()
    server_min = _text(data.min_microversion) if data and data.min_microversion else None
    server_max = _text(data.max_microversion) if data and data.max_microversion else None
    version = choose(server_min, server_max)
    conn.compute.default_microversion = version
    return version


def at_least(version: str, wanted: str) -> bool:
    return _tuple(version) >= _tuple(wanted)


def connect(conf):
    """An openstacksdk connection from the ``[nova]`` options, its microversion negotiated.

    With ``[nova] auth_type`` set, keystoneauth reads the credentials from that
    section, as a service's ``[nova]`` section usually has them; otherwise
    ``[nova] cloud`` names a clouds.yaml entry (or the OS_* variables).
    """
    import openstack
    import openstack.connection
    from keystoneauth1 import loading as ks_loading

    if conf.nova.auth_type:
        auth = ks_loading.load_auth_from_conf_options(conf, 'nova')
        session = ks_loading.load_session_from_conf_options(conf, 'nova', auth=auth)
        conn = openstack.connection.Connection(session=session,
                                               region_name=conf.nova.region_name,
                                               compute_api_version='2')
    else:
        conn = openstack.connect(cloud=conf.nova.cloud, region_name=conf.nova.region_name)
    negotiate(conn)
    return conn


def message(exc: BaseException) -> str:
    """What Nova said, without openstacksdk's prefix and URL."""
    details = getattr(exc, 'details', None)
    status = getattr(exc, 'status_code', None)
    text = str(details) if details else str(exc)
    return f'{text} (HTTP {status})' if status else text
