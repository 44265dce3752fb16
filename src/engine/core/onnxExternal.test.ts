/**
 * The external data a graph names, read from its protobuf, on the checked-in graphs whose layout is
 * known (written by onnx's save_model in training/replicas/*.py and training/export.py): optimum's
 * one `model.onnx_data`, TensorStack's `model.onnx.data`, webnn's `<file>_data` and sharded
 * `<file>_data` + `<file>_data_1`, and graphs with every weight inline.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { externalDataPaths } from './onnxExternal';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../..');
const FAMILIES = path.join(ROOT, 'src/engine/families');
const read = (p: string) => new Uint8Array(fs.readFileSync(path.join(FAMILIES, p)));

describe('externalDataPaths', () => {
  it.each([
    ['sd3/__replica__/sd3-tiny/transformer/model.onnx', ['model.onnx_data']],
    ['sd3/__replica__/sd3-tiny/text_encoder_3/model.onnx', ['model.onnx_data']],
    ['sd3/__replica__/sd3-tiny/vae_decoder/model.onnx', []],
    ['sd3/__replica__/sd3-tensorstack-tiny/unet/model.onnx', ['model.onnx.data']],
    ['zimage/__replica__/zimage-tiny/onnx/transformer_model_q4f16.onnx', ['transformer_model_q4f16.onnx_data']],
    ['zimage/__replica__/zimage-tiny-fp16/onnx/transformer_model_q4f16.onnx', ['transformer_model_q4f16.onnx_data', 'transformer_model_q4f16.onnx_data_1']],
    ['zimage/__replica__/zimage-tiny-fp16/onnx/text_encoder_model_q4f16.onnx', ['text_encoder_model_q4f16.onnx_data', 'text_encoder_model_q4f16.onnx_data_1']],
    ['zimage/__replica__/zimage-tiny-fp16/onnx/vae_decoder_model_f16.onnx', []],
  ])('%s names %j', (file, want) => {
    expect(externalDataPaths(read(file)).sort()).toEqual(want);
  });

  it('names every file the golden layout lists, for every replica graph', () => {
    const golden = JSON.parse(fs.readFileSync(path.join(FAMILIES, 'zimage/__replica__/zimage-golden.json'), 'utf8')) as { layout: Record<string, Record<string, { external_data: string[] }>> };
    for (const [version, graphs] of Object.entries(golden.layout)) {
      for (const [file, g] of Object.entries(graphs)) expect(externalDataPaths(read(`zimage/__replica__/${version}/onnx/${file}`)).sort(), file).toEqual(g.external_data);
    }
  });

  it('refuses bytes that are not a protobuf message instead of guessing', () => {
    expect(() => externalDataPaths(new Uint8Array([0x3a, 0xff, 0xff, 0xff, 0x0f]))).toThrow(/past its message/);
    expect(() => externalDataPaths(new Uint8Array([0x0b]))).toThrow(/wire type/);
  });
});
