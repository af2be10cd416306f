#!/usr/bin/env bash
# The whole test suite: .venv, real RabbitMQ and MariaDB, pytest (unit, functional, e2e), ruff.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$ROOT/tools/bootstrap.sh"
"$ROOT/tools/services.sh"
"$ROOT/tools/e2e-setup.sh"
cd "$ROOT"
.venv/bin/ruff check slm_plugin tests
.venv/bin/python -m pytest -q "$@" tests
