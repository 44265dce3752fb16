// Applies a tokenizer folder's chat template with transformers.js (the npm package the engine uses),
// building the tokenizer from tokenizer.json + tokenizer_config.json as the engine does.
// stdin: {dir, class, prompts: [..]}
// stdout: {text: [..], ids: [[..]], text_no_thinking: [..]}: the user message with the generation
// prompt, enable_thinking true (diffusers' ZImagePipeline) and false; ids without special tokens added.
import fs from 'node:fs';
import path from 'node:path';
import * as T from '@huggingface/transformers';

const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const req = JSON.parse(Buffer.concat(chunks).toString('utf8'));
const read = (f) => JSON.parse(fs.readFileSync(path.join(req.dir, f), 'utf8'));
const tok = new T[req.class](read('tokenizer.json'), read('tokenizer_config.json'));
const chat = (p, thinking) => tok.apply_chat_template([{ role: 'user', content: p }], { tokenize: false, add_generation_prompt: true, enable_thinking: thinking });
const text = req.prompts.map((p) => chat(p, true));
const ids = text.map((t) => tok.encode(t, { add_special_tokens: false }));
process.stdout.write(JSON.stringify({ text, ids, text_no_thinking: req.prompts.map((p) => chat(p, false)) }));
