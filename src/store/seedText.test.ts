/**
 * Fault table 3b/3c and 2d: the seed field holds exactly what the user typed, a run never uses a
 * seed the field does not show, and prompts lose their control characters before anything sees them.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { connectEngine } from './connect';
import { MAX_SEED, parseSeedText } from './params';
import { selectSeedError, selectStatusText } from './selectors';
import { resetStudio, studioStore } from './store';
import { FakeEngine, loadDone } from './testUtils';

let engine: FakeEngine;
let disconnect: () => void;
const state = () => studioStore.getState();
const generateCalls = () => engine.calls.flatMap((c) => (c.type === 'generate' ? [c.params] : []));

beforeEach(() => {
  resetStudio();
  engine = new FakeEngine();
  disconnect = connectEngine(studioStore, engine);
});
afterEach(() => disconnect());

function ready(): void {
  state().loadModel('/m/');
  engine.emit(loadDone(engine.lastId));
}

describe('parseSeedText', () => {
  it('takes digits only, from 0 to the largest uint32', () => {
    expect(parseSeedText('0')).toEqual({ seed: 0 });
    expect(parseSeedText(' 007 ')).toEqual({ seed: 7 });
    expect(parseSeedText(String(MAX_SEED))).toEqual({ seed: MAX_SEED });
  });

  it.each([
    ['', /Seed is empty/],
    ['   ', /Seed is empty/],
    ['1e20', /Seed "1e20" is not a whole number from 0 to 4294967295/],
    ['12.7', /Seed "12.7" is not a whole number/],
    ['-5', /Seed "-5" is not a whole number/],
    ['0x10', /Seed "0x10" is not/],
    ['abc', /Seed "abc" is not/],
    ['4294967296', /Seed 4294967296 is larger than 4294967295/],
    ['9'.repeat(40), /Seed 9{24}… is larger/],
  ])('refuses %j', (text, message) => {
    const parsed = parseSeedText(text);
    expect('error' in parsed && parsed.error).toMatch(message);
  });
});

describe('the seed field', () => {
  it('keeps "1e20" as typed, keystroke by keystroke, and the seed at the last good value', () => {
    state().setSeedText('1');
    expect([state().seedText, state().seed]).toEqual(['1', 1]);
    for (const text of ['1e', '1e2', '1e20']) {
      state().setSeedText(text);
      expect(state().seedText).toBe(text); // never rewritten to "100"
      expect(state().seed).toBe(1);
      expect(selectSeedError(state())).toMatch(/not a whole number/);
    }
  });

  it('refuses to generate from text that is not a seed, and says why', () => {
    ready();
    state().setSeedText('1e20');
    state().generate();
    expect(generateCalls()).toEqual([]);
    expect(state().generation.status).toBe('idle');
    expect(selectStatusText(state())).toBe('Not started: Seed "1e20" is not a whole number from 0 to 4294967295 (digits only).');
    // an emptied field: no hidden seed either
    state().setSeedText('');
    state().generate();
    expect(generateCalls()).toEqual([]);
    expect(selectStatusText(state())).toMatch(/^Not started: Seed is empty/);
    // fixed: the run uses exactly the number shown
    state().setSeedText('77');
    state().generate();
    expect(generateCalls().map((p) => p.seed)).toEqual([77]);
  });

  it('with "new seed each time", an invalid field is replaced by the seed the run uses', () => {
    ready();
    state().setSeedText('');
    state().setRandomizeSeed(true);
    state().generate();
    const [{ seed }] = generateCalls();
    expect(state().seedText).toBe(String(seed));
    expect(selectSeedError(state())).toBeNull();
  });

  it('a run waiting for the model does not start if the field is emptied meanwhile', () => {
    state().loadModel('/m/');
    const loadId = engine.lastId;
    state().generate();
    expect(state().generation.pending).toBe(true);
    state().setSeedText('');
    engine.emit(loadDone(loadId));
    expect(generateCalls()).toEqual([]);
    expect(state().generation.status).toBe('idle');
    expect(selectStatusText(state())).toMatch(/^Not started: Seed is empty/);
  });

  it('the dice, setSeed and applyForm replace the text with the seed they set', () => {
    state().setSeedText('garbage');
    state().rollSeed();
    expect(state().seedText).toBe(String(state().seed));
    state().setSeedText('');
    state().applyForm({ seed: 1234 });
    expect([state().seedText, state().seed, selectSeedError(state())]).toEqual(['1234', 1234, null]);
  });
});

describe('prompt hygiene', () => {
  it('removes control characters (but \\n and \\t) from prompts before the engine or the PNG sees them', () => {
    ready();
    state().setSeedText('5');
    state().setPrompt('a\u0000b\u0007 \u001b[31mred\r\nnext\ttab\u202eevil\ufeff');
    state().setNegativePrompt('neg\u0000');
    expect(state().prompt).toBe('ab [31mred\nnext\ttabevil');
    state().generate();
    expect(generateCalls()[0]).toMatchObject({ prompt: 'ab [31mred\nnext\ttabevil', negativePrompt: 'neg' });
  });

  it('keeps what emoji and right-to-left text need', () => {
    state().setPrompt('👩\u200d🚀 \u200fשלום\u200e');
    expect(state().prompt).toBe('👩\u200d🚀 \u200fשלום\u200e');
  });
});
