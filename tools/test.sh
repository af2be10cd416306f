#!/usr/bin/env bash
# The whole test suite: .venv, real RabbitMQ and MariaDB, ruff, shellcheck, the docs
# (warnings are errors), pytest (unit, functional, e2e), then the real one-machine
# OpenStack of tools/cloud.sh: brought up, tests/integration/test_slm_cloud.py run against
# it, torn down whatever happened. SLM_NO_REAL_CLOUD=1 leaves that part out (CI never
# does); arguments go to the first pytest.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$ROOT/tools/bootstrap.sh"
"$ROOT/tools/services.sh"
"$ROOT/tools/e2e-setup.sh"
cd "$ROOT"
.venv/bin/ruff check slm_plugin tests
.venv/bin/shellcheck devstack/plugin.sh devstack/settings tools/*.sh .ci/run
.venv/bin/sphinx-build -q -W --keep-going -b html doc/source doc/build/html
.venv/bin/python -m pytest -q "$@" tests
if [ "${SLM_NO_REAL_CLOUD:-}" != 1 ]; then
    trap '"$ROOT/tools/cloud.sh" down || true' EXIT
    "$ROOT/tools/cloud.sh" up
    "$ROOT/tools/cloud.sh" test
fi
