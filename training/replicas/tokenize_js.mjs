// Tokenizes prompts with transformers.js (the npm package the engine uses), built from a folder's
// tokenizer.json + tokenizer_config.json as the engine builds it (AutoTokenizer ignores subfolders).
// stdin: {tokenizers: {name: {dir, class, max_length}}, prompts: [..]}
// stdout: {name: [[ids of prompt 0], ...]} with padding 'max_length' and truncation on.
import fs from 'node:fs';
import path from 'node:path';
import * as T from '@huggingface/transformers';

const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const req = JSON.parse(Buffer.concat(chunks).toString('utf8'));
const out = {};
for (const [name, t] of Object.entries(req.tokenizers)) {
  const read = (f) => JSON.parse(fs.readFileSync(path.join(t.dir, f), 'utf8'));
  const Cls = T[t.class];
  if (!Cls) throw new Error(`transformers.js has no ${t.class}`);
  const tok = new Cls(read('tokenizer.json'), read('tokenizer_config.json'));
  out[name] = req.prompts.map((p) => {
    const enc = tok(p, { padding: 'max_length', truncation: true, max_length: t.max_length, return_tensor: false });
    return enc.input_ids.map(Number);
  });
}
process.stdout.write(JSON.stringify(out));
