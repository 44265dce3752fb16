/**
 * A store-only ZIP writer (PKWARE APPNOTE 6.3.x, method 0): PNGs are compressed already, so
 * deflating them again would cost time and save nothing. Local file headers, the data, then the
 * central directory and its end record; names in UTF-8 (general-purpose flag bit 11).
 * No ZIP64: an archive stays under 4 GiB and 65,535 entries, which a batch or a history never
 * reaches (history keeps at most a few hundred images); beyond that it throws and says so.
 */
import { crc32 } from '../png';

export interface ZipEntry {
  /** Path inside the archive, '/' separated (e.g. "webdit-42.png"). */
  name: string;
  data: Uint8Array;
  /** Modification time stored in the entry (DOS time: 2-second resolution, 1980-2107). */
  date?: Date;
}

const LOCAL_HEADER = 0x04034b50;
const CENTRAL_HEADER = 0x02014b50;
const END_OF_CENTRAL_DIRECTORY = 0x06054b50;
/** "Version needed to extract": 2.0, the lowest that knows directories and store/deflate. */
const VERSION = 20;
/** General-purpose bit 11: the name (and comment) are UTF-8. */
const UTF8_FLAG = 0x0800;
const MAX_U32 = 0xffffffff;
const MAX_U16 = 0xffff;

/** MS-DOS date and time words, as ZIP stores them (local time, like every zip tool). */
export function dosDateTime(date: Date): { time: number; date: number } {
  const year = Math.min(Math.max(date.getFullYear(), 1980), 2107);
  return {
    time: (date.getHours() << 11) | (date.getMinutes() << 5) | (date.getSeconds() >> 1),
    date: ((year - 1980) << 9) | ((date.getMonth() + 1) << 5) | date.getDate(),
  };
}

function checkName(name: string): void {
  // a name that climbs out of the folder or starts at the root could overwrite files on unzip
  if (name === '' || name.startsWith('/') || name.includes('\\') || name.split('/').includes('..')) {
    throw new Error(`Bad name in a zip: ${JSON.stringify(name)}. Use a relative path with '/' separators and no '..'.`);
  }
}

/** The archive's bytes. Entry order is kept; duplicate names are refused (use uniqueNames first). */
export function makeZip(entries: readonly ZipEntry[], now: Date = new Date()): Uint8Array<ArrayBuffer> {
  if (entries.length > MAX_U16) throw new Error(`A zip without ZIP64 holds at most ${MAX_U16} files, not ${entries.length}. Download fewer images at a time.`);
  const seen = new Set<string>();
  const encoder = new TextEncoder();
  const prepared = entries.map((e) => {
    checkName(e.name);
    if (seen.has(e.name)) throw new Error(`Two files named ${JSON.stringify(e.name)} in one zip: give each a unique name.`);
    seen.add(e.name);
    const name = encoder.encode(e.name);
    if (name.length > MAX_U16) throw new Error(`The name ${JSON.stringify(e.name.slice(0, 40))}… is too long for a zip (${name.length} bytes; at most ${MAX_U16}).`);
    return { name, data: e.data, crc: crc32(e.data), dos: dosDateTime(e.date ?? now) };
  });

  const localSize = prepared.reduce((n, e) => n + 30 + e.name.length + e.data.length, 0);
  const centralSize = prepared.reduce((n, e) => n + 46 + e.name.length, 0);
  const total = localSize + centralSize + 22;
  if (localSize > MAX_U32 || total > MAX_U32) throw new Error(`The zip would be ${total} bytes; without ZIP64 it must stay under 4 GiB. Download fewer images at a time.`);

  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let pos = 0;
  const u16 = (v: number) => {
    view.setUint16(pos, v, true);
    pos += 2;
  };
  const u32 = (v: number) => {
    view.setUint32(pos, v >>> 0, true);
    pos += 4;
  };
  const bytes = (b: Uint8Array) => {
    out.set(b, pos);
    pos += b.length;
  };

  // local file header + data for each entry
  const offsets: number[] = [];
  for (const e of prepared) {
    offsets.push(pos);
    u32(LOCAL_HEADER);
    u16(VERSION);
    u16(UTF8_FLAG);
    u16(0); // method: stored
    u16(e.dos.time);
    u16(e.dos.date);
    u32(e.crc);
    u32(e.data.length); // compressed size = size when stored
    u32(e.data.length);
    u16(e.name.length);
    u16(0); // extra field length
    bytes(e.name);
    bytes(e.data);
  }

  // central directory: the same facts again, plus where each local header starts
  const centralStart = pos;
  prepared.forEach((e, i) => {
    u32(CENTRAL_HEADER);
    u16(VERSION); // version made by (MS-DOS attributes)
    u16(VERSION);
    u16(UTF8_FLAG);
    u16(0);
    u16(e.dos.time);
    u16(e.dos.date);
    u32(e.crc);
    u32(e.data.length);
    u32(e.data.length);
    u16(e.name.length);
    u16(0); // extra
    u16(0); // comment
    u16(0); // disk number start
    u16(0); // internal attributes
    u32(0); // external attributes
    u32(offsets[i]);
    bytes(e.name);
  });

  const centralEnd = pos;

  // end of central directory record
  u32(END_OF_CENTRAL_DIRECTORY);
  u16(0); // this disk
  u16(0); // disk with the central directory
  u16(prepared.length);
  u16(prepared.length);
  u32(centralEnd - centralStart); // size of the central directory
  u32(centralStart);
  u16(0); // comment length
  return out;
}

/**
 * Names made unique for one archive, in order: a repeated "webdit-42.png" becomes
 * "webdit-42-2.png", "webdit-42-3.png", … (history can hold one seed twice).
 */
export function uniqueNames(names: readonly string[]): string[] {
  const used = new Set<string>();
  return names.map((name) => {
    let candidate = name;
    const dot = name.lastIndexOf('.');
    const [stem, ext] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ''];
    for (let k = 2; used.has(candidate); k++) candidate = `${stem}-${k}${ext}`;
    used.add(candidate);
    return candidate;
  });
}
