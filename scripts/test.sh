#!/usr/bin/env bash
# Every test: typecheck, unit (Vitest, Node), the recipe's smoke run (pytest), e2e (Playwright in
# Chromium, WebGPU and WASM). Ends with one line "N passed, N failed" over all of them; a runner
# that crashes or reports nothing counts as a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
REPORTS=.test-reports
rm -rf "$REPORTS" && mkdir -p "$REPORTS"

if ! bash scripts/setup-system.sh; then
  echo "setup failed: could not install the Debian packages the tests need (see above)"
  echo "0 passed, 1 failed"
  exit 1
fi

echo "== typecheck (tsc)"
npx tsc --noEmit -p tsconfig.json
echo $? > "$REPORTS/tsc.rc"

echo "== unit tests (vitest)"
npx vitest run --reporter=default --reporter=json --outputFile.json="$REPORTS/vitest.json"
echo $? > "$REPORTS/vitest.rc"

echo "== training recipe smoke test (pytest, toy size)"
/usr/bin/python3 -m pytest -q -p no:cacheprovider training/tests --junitxml="$REPORTS/pytest.xml"
echo $? > "$REPORTS/pytest.rc"

echo "== e2e (playwright: webgpu + wasm)"
npx vite build --logLevel warn && \
  PLAYWRIGHT_JSON_OUTPUT_NAME="$REPORTS/playwright.json" npx playwright test --reporter=list,json
echo $? > "$REPORTS/playwright.rc"

node scripts/summarize.mjs "$REPORTS"
