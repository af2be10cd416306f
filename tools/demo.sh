#!/usr/bin/env bash
# The main job on the embedded default: slm-demo in .venv against a simulated two-site cloud.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$ROOT/tools/bootstrap.sh"
cd "$ROOT"
exec .venv/bin/slm-demo "$@"
