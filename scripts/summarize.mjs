// Adds up the three runners' reports into one closing line: "N passed, N failed".
// A runner that left no report counts as one failure, so a crash cannot look green.
import fs from 'node:fs';
import path from 'node:path';

const dir = process.argv[2] ?? '.test-reports';
let passed = 0, failed = 0;
const read = (f) => { try { return fs.readFileSync(path.join(dir, f), 'utf8'); } catch { return null; } };

const vitest = read('vitest.json');
if (vitest) {
  const v = JSON.parse(vitest);
  passed += v.numPassedTests;
  failed += v.numFailedTests + v.numPendingTests + v.numTodoTests + (v.numFailedTestSuites > 0 && v.numFailedTests === 0 ? 1 : 0);
} else failed += 1;

const pytest = read('pytest.xml');
if (pytest) {
  const m = pytest.match(/<testsuite [^>]*>/)[0];
  const n = (k) => Number((m.match(new RegExp(`${k}="(\\d+)"`)) ?? [0, 0])[1]);
  failed += n('failures') + n('errors');
  passed += n('tests') - n('failures') - n('errors') - n('skipped');
  failed += n('skipped'); // a skipped test is not a passing one
} else failed += 1;

const pw = read('playwright.json');
if (pw) {
  const s = JSON.parse(pw).stats;
  passed += s.expected; failed += s.unexpected + s.flaky + s.skipped;
} else failed += 1;

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
