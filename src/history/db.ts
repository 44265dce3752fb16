/**
 * The image history's IndexedDB: one object store of finished images, each with the PNG exactly
 * as "Download PNG" writes it (so it carries its settings), plus its settings, model, backend and
 * timings as plain fields for the gallery. Keys come from the store's autoIncrement counter, so
 * key order is age order (oldest first) and a deleted key is never reused.
 *
 * The PNG is kept as a Blob: the browser stores it as a file and hands back a handle, so listing a
 * full history does not read every image into memory. Only this module touches indexedDB.
 */
import type { BackendInfo, GenerateTimings, ResolvedGenerateParams } from '../engine/protocol';

export const HISTORY_DB_NAME = 'webdit-history';
const DB_VERSION = 1;
const STORE = 'images';

/** What the studio hands over for one finished image. */
export interface HistoryInput {
  /** Date.now() when the image arrived. */
  createdAt: number;
  /** PNG bytes with the `parameters` text chunk. */
  png: Blob;
  width: number;
  height: number;
  /** The settings that make exactly this image again (its own seed, a batch of one). */
  params: ResolvedGenerateParams;
  modelId: string;
  shift: number;
  /** The backend the model ran on; null if the store did not know it. */
  backend: BackendInfo | null;
  timings: GenerateTimings;
}

export interface HistoryEntry extends HistoryInput {
  id: number;
  /** png.size, kept so the sum of stored bytes needs no blob reads. */
  bytes: number;
}

/** The calls the history store makes; a test can hand it an in-memory one. */
export interface HistoryDb {
  add(input: HistoryInput): Promise<HistoryEntry>;
  /** Every entry, oldest first. */
  all(): Promise<HistoryEntry[]>;
  remove(ids: readonly number[]): Promise<void>;
  clear(): Promise<void>;
  close(): void;
}

/** The browser refused the write because this site's storage is full. */
export function isQuotaError(e: unknown): boolean {
  const name = (e as { name?: unknown } | null)?.name;
  // code 22 is the legacy QUOTA_EXCEEDED_ERR; Firefox once said NS_ERROR_DOM_QUOTA_REACHED
  return name === 'QuotaExceededError' || name === 'NS_ERROR_DOM_QUOTA_REACHED' || (e instanceof DOMException && e.code === 22);
}

const promised = <T>(request: IDBRequest<T>): Promise<T> =>
  new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error ?? new Error('IndexedDB request failed'));
  });

/** Resolves when the transaction commits; rejects with its error when it aborts. */
const committed = (tx: IDBTransaction): Promise<void> =>
  new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    // a failed request (or a commit over quota) aborts the transaction: tx.error says why
    tx.onabort = () => reject(tx.error ?? new DOMException('The IndexedDB transaction was aborted', 'AbortError'));
  });

/** Runs `body` in one transaction; its result counts only once the transaction has committed. */
async function inTransaction<T>(db: IDBDatabase, mode: IDBTransactionMode, body: (store: IDBObjectStore) => Promise<T> | T): Promise<T> {
  const tx = db.transaction(STORE, mode);
  const done = committed(tx);
  try {
    const result = await body(tx.objectStore(STORE));
    await done;
    return result;
  } catch (e) {
    // a request that threw (or failed) leaves the transaction to abort on its own; wait for it quietly
    try {
      tx.abort();
    } catch {
      // already finished
    }
    await done.catch(() => undefined);
    throw e;
  }
}

export function openHistoryDb(name: string = HISTORY_DB_NAME): Promise<HistoryDb> {
  return new Promise((resolve, reject) => {
    if (typeof indexedDB === 'undefined') {
      reject(new Error('This browser has no IndexedDB (a private window may turn it off).'));
      return;
    }
    const request = indexedDB.open(name, DB_VERSION);
    request.onupgradeneeded = () => {
      request.result.createObjectStore(STORE, { keyPath: 'id', autoIncrement: true });
    };
    request.onblocked = () => reject(new Error('The history database is held open by an older copy of the studio in another tab. Close the other tabs and reload.'));
    request.onerror = () => reject(request.error ?? new Error('IndexedDB could not be opened'));
    request.onsuccess = () => {
      const db = request.result;
      // a newer studio in another tab wants to upgrade: let it
      db.onversionchange = () => db.close();
      resolve({
        add: (input) =>
          inTransaction(db, 'readwrite', async (store) => {
            const record: Omit<HistoryEntry, 'id'> = { ...input, bytes: input.png.size };
            // put (not add): the key is new anyway, and put is the one write call to watch
            const id = await promised(store.put(record));
            return { ...record, id: id as number };
          }),
        all: () => inTransaction(db, 'readonly', (store) => promised(store.getAll() as IDBRequest<HistoryEntry[]>)),
        remove: (ids) =>
          inTransaction(db, 'readwrite', async (store) => {
            await Promise.all(ids.map((id) => promised(store.delete(id))));
          }),
        clear: () => inTransaction(db, 'readwrite', (store) => promised(store.clear()).then(() => undefined)),
        close: () => db.close(),
      });
    };
  });
}
