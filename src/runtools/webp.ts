/**
 * Animated WebP from still WebP frames (the browser's own encoder makes each: canvas.toBlob
 * 'image/webp'): the container of the WebP spec (RIFF 'WEBP', a VP8X header with the animation
 * flag, ANIM, then one ANMF per frame holding that frame's image chunks). No pixel work here.
 */

const ascii = (s: string) => Array.from(s, (c) => c.charCodeAt(0));

function fourcc(bytes: Uint8Array, at: number): string {
  return String.fromCharCode(bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]);
}

const u32 = (b: Uint8Array, at: number) => (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;

interface Chunk {
  id: string;
  /** Header, payload and pad byte, as stored. */
  bytes: Uint8Array;
}

/** The chunks of a WebP file; throws on anything that is not one. */
export function webpChunks(file: Uint8Array): Chunk[] {
  if (file.length < 12 || fourcc(file, 0) !== 'RIFF' || fourcc(file, 8) !== 'WEBP') throw new Error('not a WebP file (no RIFF WEBP header)');
  const end = Math.min(file.length, 8 + u32(file, 4));
  const chunks: Chunk[] = [];
  for (let at = 12; at + 8 <= end; ) {
    const size = u32(file, at + 4);
    const stored = 8 + size + (size & 1);
    if (at + 8 + size > end) throw new Error(`WebP chunk ${fourcc(file, at)} runs past the end of the file`);
    chunks.push({ id: fourcc(file, at), bytes: file.subarray(at, Math.min(end, at + stored)) });
    at += stored;
  }
  return chunks;
}

class Writer {
  private parts: number[] = [];
  bytes(b: ArrayLike<number>) {
    for (let i = 0; i < b.length; i++) this.parts.push(b[i]);
  }
  u8(v: number) {
    this.parts.push(v & 0xff);
  }
  u16(v: number) {
    this.u8(v);
    this.u8(v >>> 8);
  }
  u24(v: number) {
    this.u16(v);
    this.u8(v >>> 16);
  }
  u32(v: number) {
    this.u16(v);
    this.u16(v >>> 16);
  }
  get length() {
    return this.parts.length;
  }
  done(): Uint8Array<ArrayBuffer> {
    return Uint8Array.from(this.parts);
  }
}

function chunk(w: Writer, id: string, payload: Uint8Array) {
  w.bytes(ascii(id));
  w.u32(payload.length);
  w.bytes(payload);
  if (payload.length & 1) w.u8(0);
}

/**
 * One animated WebP of `frames` (still WebP files of width x height each), each shown
 * `durationMs`, looping forever (loop count 0).
 */
export function animatedWebp(frames: Uint8Array[], width: number, height: number, durationMs: number): Uint8Array<ArrayBuffer> {
  if (frames.length === 0) throw new Error('an animation needs at least one frame');
  if (width < 1 || height < 1 || width > 1 << 24 || height > 1 << 24) throw new Error(`canvas ${width}x${height} is outside WebP's 1..16777216`);
  const duration = Math.max(1, Math.min(0xffffff, Math.round(durationMs)));
  let alpha = false;
  const images = frames.map((f, i) => {
    // a still may start with its own VP8X header (alpha, ICC): only the image chunks go in a frame
    const parts = webpChunks(f).filter((c) => c.id === 'ALPH' || c.id === 'VP8 ' || c.id === 'VP8L');
    if (!parts.some((c) => c.id === 'VP8 ' || c.id === 'VP8L')) throw new Error(`frame ${i} has no VP8/VP8L image chunk`);
    alpha ||= parts.some((c) => c.id === 'ALPH' || c.id === 'VP8L');
    const data = new Uint8Array(parts.reduce((n, c) => n + c.bytes.length, 0));
    let at = 0;
    for (const c of parts) {
      data.set(c.bytes, at);
      at += c.bytes.length;
    }
    return data;
  });
  const body = new Writer();
  const vp8x = new Writer();
  vp8x.u8(0x02 | (alpha ? 0x10 : 0)); // animation, alpha
  vp8x.u24(0);
  vp8x.u24(width - 1);
  vp8x.u24(height - 1);
  chunk(body, 'VP8X', vp8x.done());
  const anim = new Writer();
  anim.u32(0); // background colour
  anim.u16(0); // loop forever
  chunk(body, 'ANIM', anim.done());
  for (const data of images) {
    const anmf = new Writer();
    anmf.u24(0); // x / 2
    anmf.u24(0); // y / 2
    anmf.u24(width - 1);
    anmf.u24(height - 1);
    anmf.u24(duration);
    anmf.u8(0x02); // no blending, no disposal: each frame replaces the canvas
    anmf.bytes(data);
    chunk(body, 'ANMF', anmf.done());
  }
  const out = new Writer();
  out.bytes(ascii('RIFF'));
  out.u32(4 + body.length);
  out.bytes(ascii('WEBP'));
  out.bytes(body.done());
  return out.done();
}
