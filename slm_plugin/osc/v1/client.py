"""A small client of the SLM API v1 on the keystoneauth session osc gives.

Every error answer of slm-api carries a message meant for the caller
(``{"error": {"code", "title", "message"}}``); ApiError keeps it, so the
command prints it as it is.
"""

from __future__ import annotations

import urllib.parse

from keystoneauth1 import adapter
from keystoneauth1 import exceptions as ks_exceptions
from osc_lib import exceptions

from slm_plugin.osc import SERVICE_TYPE

VERSION_PATH = '/v1'
RESOURCE = '/group-migrations'


class ApiError(exceptions.CommandError):
    """slm-api refused a request; the message is the API's, with its HTTP code."""

    def __init__(self, code: int, message: str, request_id: str | None = None):
        self.code = code
        self.message = message
        self.request_id = request_id
        super().__init__(f'{message} (HTTP {code})')


def _error(response) -> ApiError:
    try:
        body = response.json()
        message = body['error']['message']
    except (ValueError, KeyError, TypeError):
        message = (response.text or response.reason or 'no message').strip()
    return ApiError(response.status_code, message,
                    response.headers.get('x-openstack-request-id'))


def versioned(endpoint: str) -> str:
    """The v1 root of an endpoint registered with or without its version."""
    endpoint = endpoint.rstrip('/')
    return endpoint if endpoint.endswith(VERSION_PATH) else endpoint + VERSION_PATH


class Client:
    """Group migrations of SLM API v1: create, list, get, abort, events."""

    def __init__(self, session, endpoint: str, region_name=None, interface=None):
        self.endpoint = versioned(endpoint)
        self._http = adapter.Adapter(session, service_type=SERVICE_TYPE,
                                     region_name=region_name, interface=interface,
                                     endpoint_override=self.endpoint)

    def _request(self, method: str, path: str, **kwargs):
        try:
            response = self._http.request(path, method, raise_exc=False,
                                          headers={'Accept': 'application/json'}, **kwargs)
        except (ks_exceptions.ConnectFailure, ks_exceptions.ConnectTimeout) as exc:
            # keystoneauth's message repeats the URL and urllib3's whole story
            reason = 'timed out' if isinstance(exc, ks_exceptions.ConnectTimeout) \
                else 'connection refused or unreachable'
            raise exceptions.CommandError(
                f'Cannot reach slm-api at {self.endpoint}: {reason}.') from None
        if response.status_code >= 400:
            raise _error(response)
        return response.json()

    def create(self, group: str, target: dict, strategy: str | None = None,
               options: dict | None = None, reason: str | None = None) -> dict:
        """Start a migration of group, or plan one with ``options['dry_run']``."""
        request = {'group': group, 'target': target}
        if strategy:
            request['strategy'] = strategy
        if reason:
            request['reason'] = reason
        if options:
            request['options'] = options
        body = self._request('POST', RESOURCE, json={'group_migration': request})
        return body['group_migration']

    def list(self, status: str | None = None, group: str | None = None,
             limit: int | None = None, marker: str | None = None) -> list[dict]:
        params = {k: v for k, v in (('status', status), ('group', group), ('limit', limit),
                                    ('marker', marker)) if v}
        return self._request('GET', RESOURCE, params=params)['group_migrations']

    def get(self, job_id: str) -> dict:
        return self._request('GET', _job(job_id))['group_migration']

    def events(self, job_id: str) -> list[dict]:
        return self._request('GET', _job(job_id) + '/events')['events']

    def abort(self, job_id: str) -> dict:
        return self._request('POST', _job(job_id) + '/abort')['group_migration']


def _job(job_id: str) -> str:
    return f"{RESOURCE}/{urllib.parse.quote(job_id, safe='')}"
