/**
 * The zip writer checked by another implementation: each archive goes to a temp file and
 * Python's zipfile (Debian's /usr/bin/python3) reads it back: names, bytes, CRC-32 (recomputed
 * by Python's zlib), method, dates and the UTF-8 flag. Nothing here is checked against our own code.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dosDateTime, makeZip, uniqueNames, type ZipEntry } from './zip';

const PYTHON = '/usr/bin/python3';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'webdit-zip-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

interface PyEntry {
  name: string;
  b64: string;
  crc: number;
  zlib_crc: number;
  size: number;
  compress_size: number;
  compress_type: number;
  flag_bits: number;
  date_time: number[];
  header_offset: number;
}

/** What Python's zipfile sees in the archive (testzip() re-reads every entry and checks its CRC). */
function readWithPython(zip: Uint8Array): { entries: PyEntry[]; bad: string | null } {
  const file = path.join(dir, `t${Math.random().toString(36).slice(2)}.zip`);
  fs.writeFileSync(file, zip);
  const script = `
import base64, json, sys, zipfile, zlib
with zipfile.ZipFile(sys.argv[1]) as z:
    bad = z.testzip()
    out = []
    for i in z.infolist():
        data = z.read(i)
        out.append(dict(name=i.filename, b64=base64.b64encode(data).decode(), crc=i.CRC, zlib_crc=zlib.crc32(data) & 0xffffffff,
                        size=i.file_size, compress_size=i.compress_size, compress_type=i.compress_type,
                        flag_bits=i.flag_bits, date_time=list(i.date_time), header_offset=i.header_offset))
print(json.dumps(dict(entries=out, bad=bad)))
`;
  return JSON.parse(execFileSync(PYTHON, ['-c', script, file], { encoding: 'utf8' }));
}

const bytesOf = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed * 7 + (i >> 3)) & 0xff);

describe('makeZip', () => {
  it('writes an archive Python reads back byte for byte, with its own CRC-32 and dates', () => {
    const date = new Date(2024, 4, 17, 13, 45, 58); // local time, as DOS time is
    const entries: ZipEntry[] = [
      { name: 'webdit-42.png', data: bytesOf(1000, 1), date },
      { name: 'webdit-43.png', data: bytesOf(70_001, 2), date },
      { name: 'empty.txt', data: new Uint8Array(0), date },
      { name: 'folder/ünïcödé 🍎.png', data: bytesOf(5, 3), date },
    ];
    const { entries: read, bad } = readWithPython(makeZip(entries));
    expect(bad).toBeNull();
    expect(read.map((e) => e.name)).toEqual(entries.map((e) => e.name));
    read.forEach((r, i) => {
      expect(Buffer.from(r.b64, 'base64').equals(Buffer.from(entries[i].data))).toBe(true);
      expect(r.crc).toBe(r.zlib_crc);
      expect(r.size).toBe(entries[i].data.length);
      expect(r.compress_size).toBe(entries[i].data.length);
      expect(r.compress_type).toBe(0); // ZIP_STORED
      expect(r.flag_bits & 0x800).toBe(0x800); // UTF-8 names
      expect(r.date_time).toEqual([2024, 5, 17, 13, 45, 58]);
    });
    // entries sit one after another: 30-byte local header + name + data
    expect(read[1].header_offset).toBe(30 + Buffer.byteLength(entries[0].name) + 1000);
  });

  it('an empty archive is still a valid zip', () => {
    expect(readWithPython(makeZip([]))).toEqual({ entries: [], bad: null });
  });

  it('odd seconds round down to DOS time (2-second resolution), years clamp to 1980', () => {
    const { entries } = readWithPython(makeZip([{ name: 'a', data: bytesOf(3, 0), date: new Date(2001, 0, 2, 3, 4, 5) }, { name: 'b', data: bytesOf(3, 1), date: new Date(1970, 0, 1) }]));
    expect(entries[0].date_time).toEqual([2001, 1, 2, 3, 4, 4]);
    expect(entries[1].date_time[0]).toBe(1980);
    expect(dosDateTime(new Date(2001, 0, 2, 3, 4, 5))).toEqual({ time: (3 << 11) | (4 << 5) | 2, date: (21 << 9) | (1 << 5) | 2 });
  });

  it('refuses duplicate names and names that would escape the folder on unzip', () => {
    const data = bytesOf(2, 0);
    expect(() => makeZip([{ name: 'a.png', data }, { name: 'a.png', data }])).toThrow(/Two files named "a.png"/);
    for (const name of ['', '/etc/x', '../x', 'a/../../x', 'a\\b']) expect(() => makeZip([{ name, data }])).toThrow(/Bad name in a zip/);
  });
});

describe('uniqueNames', () => {
  it('numbers repeats before the extension and keeps the order', () => {
    expect(uniqueNames(['webdit-1.png', 'webdit-1.png', 'webdit-2.png', 'webdit-1.png', 'webdit-1-2.png', 'README'])).toEqual([
      'webdit-1.png',
      'webdit-1-2.png',
      'webdit-2.png',
      'webdit-1-3.png',
      'webdit-1-2-2.png',
      'README',
    ]);
  });
});
