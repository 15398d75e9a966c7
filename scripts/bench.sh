#!/usr/bin/env bash
# npm run bench: build, then every bench/*-bench.mjs in turn; each writes its JSON to bench/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh
npx tsc -p tsconfig.build.json
node scripts/build-web.mjs
for b in bench/*-bench.mjs; do
  echo "== $b"
  node "$b"
done
