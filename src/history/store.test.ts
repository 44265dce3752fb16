/**
 * The history store's rules with an in-memory HistoryDb (our own interface, not an IndexedDB
 * imitation): what is saved, in which order, what is evicted, and what a refused write leaves.
 * The IndexedDB module itself runs in real Chromium (e2e/history.spec.ts).
 */
import { describe, expect, it } from 'vitest';
import { connectEngine } from '../store/connect';
import { createStudioStore } from '../store/store';
import { FakeEngine, loadDone } from '../store/testUtils';
import type { HistoryDb, HistoryEntry, HistoryInput } from './db';
import { connectHistory, createHistoryStore, type HistoryStore } from './store';

/** A HistoryDb over an array; `failNext` makes the next add reject with that error. */
function memoryDb() {
  const rows: HistoryEntry[] = [];
  let next = 1;
  const db = {
    rows,
    failNext: null as unknown,
    async add(input: HistoryInput) {
      if (db.failNext) {
        const e = db.failNext;
        db.failNext = null;
        throw e;
      }
      const entry = { ...input, id: next++, bytes: input.png.size };
      rows.push(entry);
      return entry;
    },
    all: async () => [...rows],
    async remove(ids: readonly number[]) {
      for (const id of ids) rows.splice(rows.findIndex((r) => r.id === id), 1);
    },
    async clear() {
      rows.length = 0;
    },
    close() {},
  } satisfies HistoryDb & Record<string, unknown>;
  return db;
}

const estimate = async () => ({ usage: 1000, quota: 5000 });
const settle = (history: HistoryStore) => history.getState().whenIdle();

/** A studio with a loaded model, an engine to play, and a history on an in-memory db. */
async function setup(limits = { maxImages: 100, maxBytes: 1e9 }) {
  const db = memoryDb();
  const history = createHistoryStore({ open: async () => db, estimate, limits });
  const studio = createStudioStore('auto');
  const engine = new FakeEngine();
  connectEngine(studio, engine);
  let clock = 1000;
  // the PNG here is the seed's bytes: each record's own, and its size is known
  connectHistory(studio, history, async (r) => new Uint8Array(r.params.seed % 256 + 1).fill(r.params.seed % 256), () => clock++);
  studio.getState().loadModel('/m/');
  engine.emit(loadDone(engine.lastId));
  await settle(history);
  return { db, history, studio, engine };
}

function generate(s: Awaited<ReturnType<typeof setup>>, seed: number, count = 1) {
  s.studio.getState().setSeed(seed);
  s.studio.getState().setNumImagesPerPrompt(count);
  s.studio.getState().generate();
  s.engine.finish();
}

describe('connectHistory', () => {
  it('saves every finished image once, in order, with its settings, model, backend and timings', async () => {
    const s = await setup();
    generate(s, 10, 3);
    generate(s, 20, 1);
    await settle(s.history);
    const { entries, status } = s.history.getState();
    expect(status).toBe('ready');
    expect(entries.map((e) => e.params.seed)).toEqual([10, 11, 12, 20]);
    expect(entries.map((e) => e.createdAt)).toEqual([1000, 1001, 1002, 1003]);
    expect(s.db.rows.map((e) => e.id)).toEqual([1, 2, 3, 4]);
    const e = entries[1];
    expect(e.bytes).toBe(12);
    expect(new Uint8Array(await e.png.arrayBuffer())).toEqual(new Uint8Array(12).fill(11));
    expect(e.png.type).toBe('image/png');
    expect(e.params.numImagesPerPrompt).toBe(1);
    expect(e).toMatchObject({ width: 4, height: 4, modelId: 'webdit-tiny', shift: 2, backend: { backend: 'webgpu', adapter: 'SwiftShader' }, timings: { totalMs: 1234 } });
    expect(s.history.getState().estimate).toEqual({ usage: 1000, quota: 5000 });
  });

  it('reads what an earlier visit stored', async () => {
    const s = await setup();
    generate(s, 5);
    await settle(s.history);
    const again = createHistoryStore({ open: async () => s.db, estimate });
    await again.getState().start();
    expect(again.getState().entries.map((e) => e.params.seed)).toEqual([5]);
  });

  it('evicts the oldest beyond the limits after each save', async () => {
    const s = await setup({ maxImages: 2, maxBytes: 1e9 });
    generate(s, 1, 3);
    await settle(s.history);
    expect(s.history.getState().entries.map((e) => e.params.seed)).toEqual([2, 3]);
    expect(s.db.rows.map((e) => e.params.seed)).toEqual([2, 3]);
  });

  it('a write over quota says the image was not saved and what to do, and keeps every stored image', async () => {
    const s = await setup();
    generate(s, 7);
    await settle(s.history);
    s.db.failNext = new DOMException('The quota has been exceeded.', 'QuotaExceededError');
    generate(s, 9);
    await settle(s.history);
    const problem = s.history.getState().problem!;
    expect(problem.quota).toBe(true);
    expect(problem.message).toContain('seed 9 was not saved to history');
    expect(problem.message).toContain('QuotaExceededError');
    expect(problem.action).toContain('delete old images');
    expect(s.db.rows.map((e) => e.params.seed)).toEqual([7]);
    expect(s.history.getState().entries.map((e) => e.params.seed)).toEqual([7]);
    // the studio still shows the image that history could not keep
    expect(s.studio.getState().images.at(-1)!.params.seed).toBe(9);
    // once there is room again, the next save clears the quota message
    generate(s, 10);
    await settle(s.history);
    expect(s.history.getState().entries.map((e) => e.params.seed)).toEqual([7, 10]);
    expect(s.history.getState().problem).toBeNull();
  });

  it('a database that cannot open turns history off with a reason, and the studio goes on', async () => {
    const history = createHistoryStore({ open: async () => Promise.reject(new DOMException('denied', 'SecurityError')), estimate });
    await history.getState().start();
    expect(history.getState().status).toBe('unavailable');
    expect(history.getState().problem!.message).toContain('SecurityError: denied');
    await history.getState().save(async () => Promise.reject(new Error('not called')));
    expect(history.getState().entries).toEqual([]);
  });
});

describe('remove and clear', () => {
  it('delete one, then all', async () => {
    const s = await setup();
    generate(s, 1, 3);
    await settle(s.history);
    const [first, second] = s.history.getState().entries;
    await s.history.getState().remove(second.id);
    expect(s.history.getState().entries.map((e) => e.id)).toEqual([first.id, 3]);
    expect(s.db.rows.map((e) => e.id)).toEqual([first.id, 3]);
    await s.history.getState().clear();
    expect(s.history.getState().entries).toEqual([]);
    expect(s.db.rows).toEqual([]);
  });
});
