/**
 * The one module that imports transformers.js. It tokenizes and encodes prompts with a CLIP-style
 * text model (CLIPTextModelWithProjection) loaded with `from_pretrained` from a model folder.
 *
 * The engine has already downloaded and sha256-checked every file of the folder; a custom cache
 * hands those exact bytes to transformers.js, so it makes no request of its own for them.
 */
import { AutoTokenizer, CLIPTextModelWithProjection, env, type PreTrainedTokenizer } from '@huggingface/transformers';
import type { HostTensor } from './tensor';
import { modelError } from './errors';

export interface PromptEncoding {
  /** Token context, [B, L, D]: `last_hidden_state`. */
  hiddenStates: HostTensor;
  /** Pooled embedding, [B, P]: `text_embeds`. */
  pooled: HostTensor;
}

export interface PromptEncoderSource {
  /** Folder that holds the model folders (URL in a browser, a directory path in Node), ending in '/'. */
  root: string;
  /** Path of the text encoder folder under `root`, e.g. 'webdit-tiny/text_encoder'. */
  folder: string;
  /** Verified files of that folder by path relative to it (e.g. 'onnx/text_model.onnx'). */
  files: Map<string, Uint8Array>;
  /** transformers.js device: 'wasm' or 'webgpu' in browsers; omit in Node (onnxruntime-node). */
  device?: 'wasm' | 'webgpu';
}

function verifiedCache(folder: string, files: Map<string, Uint8Array>) {
  // transformers.js asks by local path and by Hub-style URL (…/<folder>/resolve/main/<file>)
  const find = (key: unknown) => {
    const url = typeof key === 'string' ? key : ((key as { url?: string })?.url ?? String(key));
    if (!url.includes(folder)) return undefined;
    for (const [rel, bytes] of files) if (url.endsWith('/' + rel)) return bytes;
    return undefined;
  };
  return {
    async match(key: unknown) {
      const bytes = find(key);
      return bytes ? new Response(bytes.slice() as BlobPart, { headers: { 'content-length': String(bytes.byteLength) } }) : undefined;
    },
    async put() {
      // nothing to store: the engine's own cache already holds the verified bytes
    },
  };
}

export class PromptEncoder {
  private constructor(
    private tokenizer: PreTrainedTokenizer,
    private model: CLIPTextModelWithProjection,
    readonly maxLength: number,
  ) {}

  static async load(src: PromptEncoderSource, maxLength: number): Promise<PromptEncoder> {
    env.allowLocalModels = true;
    env.allowRemoteModels = false;
    env.localModelPath = src.root;
    env.useBrowserCache = false;
    env.useFSCache = false;
    env.useCustomCache = true;
    env.customCache = verifiedCache(src.folder, src.files) as unknown as typeof env.customCache;
    try {
      const tokenizer = await AutoTokenizer.from_pretrained(src.folder);
      const model = await CLIPTextModelWithProjection.from_pretrained(src.folder, {
        dtype: 'fp32',
        ...(src.device ? { device: src.device } : {}),
      });
      return new PromptEncoder(tokenizer, model, maxLength);
    } catch (e) {
      throw modelError(
        `Could not load the text encoder "${src.folder}": ${(e as Error).message}`,
        'Reload the page. If you host this model: the text encoder folder needs config.json, tokenizer.json, tokenizer_config.json and onnx/text_model.onnx (training/export.py writes them).',
      );
    }
  }

  /** Token ids exactly as the model sees them: truncated and padded to maxLength. */
  tokenize(texts: string[]): number[][] {
    const enc = this.tokenizer(texts, { padding: 'max_length', truncation: true, max_length: this.maxLength });
    const ids = enc.input_ids;
    const [b, l] = ids.dims;
    const flat = Array.from(ids.data as ArrayLike<bigint | number>, Number);
    return Array.from({ length: b }, (_, i) => flat.slice(i * l, (i + 1) * l));
  }

  async encode(texts: string[]): Promise<PromptEncoding> {
    const enc = this.tokenizer(texts, { padding: 'max_length', truncation: true, max_length: this.maxLength });
    const out = await this.model({ input_ids: enc.input_ids });
    const h = out.last_hidden_state, p = out.text_embeds;
    return {
      hiddenStates: { data: new Float32Array(h.data as Float32Array), dims: [...h.dims] },
      pooled: { data: new Float32Array(p.data as Float32Array), dims: [...p.dims] },
    };
  }

  async dispose(): Promise<void> {
    await this.model.dispose();
  }
}
