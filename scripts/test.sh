#!/usr/bin/env bash
# Every test: typecheck, unit (Vitest, Node, on the shipped model), the recipe's smoke run (pytest:
# trains and exports the toy model), the engine again on that freshly trained toy model (Vitest:
# browser code = PyTorch on every run, not only when the shipped model was made), e2e (Playwright
# in Chromium, WebGPU and WASM). Ends with one line "N passed, N failed" over all of them; a runner
# that crashes or reports nothing counts as a failure, and so does a failed setup.
set -uo pipefail
cd "$(dirname "$0")/.."
REPORTS=.test-reports
rm -rf "$REPORTS" && mkdir -p "$REPORTS"

if ! bash scripts/setup-system.sh; then
  echo "setup failed: could not install the Debian packages the tests need (see above)"
  echo "0 passed, 1 failed"
  exit 1
fi
if [ ! -d node_modules ] && ! npm ci --no-audit --no-fund; then
  echo "setup failed: npm ci did not complete (see above)"
  echo "0 passed, 1 failed"
  exit 1
fi

echo "== typecheck (tsc)"
npx tsc --noEmit -p tsconfig.json
echo $? > "$REPORTS/tsc.rc"

echo "== unit tests (vitest, shipped model)"
npx vitest run --reporter=default --reporter=json --outputFile.json="$REPORTS/vitest.json"
echo $? > "$REPORTS/vitest.rc"

echo "== training recipe smoke test (pytest, toy size)"
WEBDIT_TOY_DIR="$PWD/$REPORTS/toy" /usr/bin/python3 -m pytest -q -p no:cacheprovider training/tests --junitxml="$REPORTS/pytest.xml"
echo $? > "$REPORTS/pytest.rc"

echo "== engine on the toy model just trained (vitest)"
WEBDIT_MODEL_DIR="$PWD/$REPORTS/toy/model" WEBDIT_FIXTURES="$PWD/$REPORTS/toy/fixtures.json" \
  npx vitest run src/engine/core/pipeline.test.ts src/engine/core/handler.test.ts src/engine/core/remote.test.ts \
  --reporter=default --reporter=json --outputFile.json="$REPORTS/vitest-toy.json"
echo $? > "$REPORTS/vitest-toy.rc"

echo "== e2e (playwright: webgpu + wasm)"
npx vite build --logLevel warn && \
  PLAYWRIGHT_JSON_OUTPUT_NAME="$REPORTS/playwright.json" npx playwright test --reporter=list,json
echo $? > "$REPORTS/playwright.rc"

node scripts/summarize.mjs "$REPORTS"
