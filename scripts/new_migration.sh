#!/usr/bin/env bash
# A new Alembic revision for a model change: `make migration MSG="what changed"`.
# The schema only moves forward: 0001_initial and every released revision stay as they are.
set -euo pipefail
cd "$(dirname "$0")/.."
message=${1:?usage: scripts/new_migration.sh "what changed"}
db=$(mktemp -d)/head.db
PITWALL_DATABASE_URL="sqlite:///$db" .venv/bin/alembic upgrade head >/dev/null
last=$(ls migrations/versions | grep -E '^[0-9]{4}_' | sort | tail -n 1 | cut -c1-4)
next=$(printf '%04d' $((10#$last + 1)))
PITWALL_DATABASE_URL="sqlite:///$db" .venv/bin/alembic revision --autogenerate --rev-id "$next" -m "$message" >/dev/null
file=$(ls migrations/versions/"$next"_*.py)
.venv/bin/ruff format -q "$file"
.venv/bin/ruff check -q --fix --select I,F401 "$file" || true
echo "wrote $file: read it before committing (autogenerate misses some changes)"
