#!/usr/bin/env bash
# npm test: system packages, build, type-check (sources and tests), lint, then every test.
# npm run test:slow adds the slow suites (KEYFRAME_SLOW=1).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/system-deps.sh
if [[ "${1:-}" == "--slow" ]]; then export KEYFRAME_SLOW=1; fi

echo "== build (tsc)"
npx tsc -p tsconfig.build.json
node scripts/build-web.mjs
echo "== type-check sources and tests"
npx tsc -p tsconfig.json --noEmit
npx tsc -p web/tsconfig.json
echo "== lint"
npx eslint --max-warnings 0 .
echo "== tests"
# every temporary file of the run (SoftHSM tokens, sites, KMS databases, Chromium profiles) under one directory,
# removed at the end; generated clips are kept between runs in their own cache
export KEYFRAME_TEST_CACHE="${KEYFRAME_TEST_CACHE:-${TMPDIR:-/tmp}/keyframe-test-clips}"
TMPDIR=$(mktemp -d -t kf-test-XXXXXX)
export TMPDIR
trap 'rm -rf "$TMPDIR"' EXIT
report=${KEYFRAME_TEST_REPORT:-$(mktemp -d)/vitest.json}
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json="$report" || status=$?
# one plain closing line that any CI reads: "tests: N passed, N failed, N skipped"
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
' "$report" || echo "tests: 0 passed, 1 failed"
exit $status
