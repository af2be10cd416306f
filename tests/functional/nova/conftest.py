"""The Nova tests run in a pytest process of their own (tests/functional/test_nova.py starts it).

Importing Nova's test code changes the interpreter for good: it chooses
eventlet or native threads for the whole process (here native threads, which
must be decided before anything imports eventlet), patches oslo.config,
logging, warnings and RPC globally. tests/conftest.py keeps this directory out
of the main run; run it alone with ``SLM_NOVA_TESTS=1 pytest tests/functional/nova``.
"""

import os

os.environ.setdefault('OS_NOVA_DISABLE_EVENTLET_PATCHING', '1')

# Nova's test package sets the process up (native threads, oslo.service's threading
# backend) when imported, and refuses to if oslo.messaging or oslo.service came
# first; a test module may import the service's modules before Nova's test base.
import nova.tests.functional  # noqa: E402,F401,I001
