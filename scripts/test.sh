#!/usr/bin/env bash
# Every test: unit (Vitest, Node), the recipe's smoke run (pytest), e2e (Playwright in Chromium,
# WebGPU and WASM). Ends with one line "N passed, N failed" over all of them.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-system.sh || exit 1
REPORTS=.test-reports
rm -rf "$REPORTS" && mkdir -p "$REPORTS"

echo "== unit tests (vitest)"
npx vitest run --reporter=default --reporter=json --outputFile.json="$REPORTS/vitest.json"

echo "== training recipe smoke test (pytest, toy size)"
/usr/bin/python3 -m pytest -q -p no:cacheprovider training/tests --junitxml="$REPORTS/pytest.xml"

echo "== e2e (playwright: webgpu + wasm)"
npx vite build --logLevel warn && \
  PLAYWRIGHT_JSON_OUTPUT_NAME="$REPORTS/playwright.json" npx playwright test --reporter=list,json

node scripts/summarize.mjs "$REPORTS"
