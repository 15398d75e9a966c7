#!/usr/bin/env bash
# npm test: system packages, build, type-check (sources and tests), lint, then every test.
# npm run test:slow adds the slow suites (KEYFRAME_SLOW=1).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/system-deps.sh
if [[ "${1:-}" == "--slow" ]]; then export KEYFRAME_SLOW=1; fi

echo "== build (tsc)"
npx tsc -p tsconfig.build.json
echo "== type-check sources and tests"
npx tsc -p tsconfig.json --noEmit
echo "== lint"
npx eslint --max-warnings 0 .
echo "== tests"
npx vitest run
