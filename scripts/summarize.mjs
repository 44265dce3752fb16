// Adds up the runners' reports into one closing line: "N passed, N failed". Each runner's exit
// code is checked too: one that failed, crashed or ran nothing without saying so counts as one
// more failure, so a green line always means every runner ran tests and all of them passed.
import fs from 'node:fs';
import path from 'node:path';

const dir = process.argv[2] ?? '.test-reports';
const read = (f) => { try { return fs.readFileSync(path.join(dir, f), 'utf8'); } catch { return null; } };
const rc = (name) => { const t = read(`${name}.rc`); return t === null ? 1 : Number(t.trim()); };
let passed = 0, failed = 0;
const notes = [];

function account(name, p, f) {
  if (p === null) { failed += 1; notes.push(`${name}: no readable report`); return; }
  passed += p; failed += f;
  if (p + f === 0) { failed += 1; notes.push(`${name}: ran no test`); }
  else if (rc(name) !== 0 && f === 0) { failed += 1; notes.push(`${name}: exited ${rc(name)} with no failed test (load error?)`); }
}

// typecheck: one check
if (rc('tsc') === 0) passed += 1; else { failed += 1; notes.push('tsc: type errors'); }

for (const name of ['vitest', 'vitest-toy']) {
  try {
    const v = JSON.parse(read(`${name}.json`));
    account(name, v.numPassedTests, v.numFailedTests + v.numPendingTests + v.numTodoTests);
  } catch { account(name, null, 0); }
}

try {
  const x = read('pytest.xml');
  // every <testsuite> counts, not only the first
  const suites = x.match(/<testsuite\b[^>]*>/g);
  const n = (k) => suites.reduce((sum, suite) => sum + Number((suite.match(new RegExp(`\\b${k}="(\\d+)"`)) ?? [0, 0])[1]), 0);
  const bad = n('failures') + n('errors') + n('skipped'); // a skipped test is not a passing one
  account('pytest', n('tests') - bad, bad);
} catch { account('pytest', null, 0); }

try {
  const r = JSON.parse(read('playwright.json'));
  const s = r.stats;
  account('playwright', s.expected, s.unexpected + s.flaky + s.skipped + (r.errors?.length ?? 0));
} catch { account('playwright', null, 0); }

for (const n of notes) console.log(`note: ${n}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
