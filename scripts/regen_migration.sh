#!/usr/bin/env bash
# Regenerate the initial migration from the models. Only while Pitwall has no
# deployed databases: after the first release, add new revisions instead.
set -euo pipefail
cd "$(dirname "$0")/.."
db=$(mktemp -d)/regen.db
rm -f migrations/versions/0001_*.py
PITWALL_DATABASE_URL="sqlite:///$db" .venv/bin/alembic revision --autogenerate --rev-id 0001 -m "initial" >/dev/null
.venv/bin/ruff format -q migrations/versions/0001_initial.py
.venv/bin/ruff check -q --fix --select I,F401 migrations/versions/0001_initial.py || true
echo "regenerated migrations/versions/0001_initial.py"
