"""The ``openstack`` command's plugin for SLM: ``openstack server group migrate`` and friends.

The service type under which slm-api is registered in the Keystone catalog
is here, free of any client library, so that deployment tooling (devstack)
can read the same value the client looks up::

    python -c 'from slm_plugin.osc import SERVICE_TYPE; print(SERVICE_TYPE)'
"""

SERVICE_TYPE = 'slm'
