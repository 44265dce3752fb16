/**
 * The registry of model families. Adding a family = a folder under families/ and one line here;
 * the core never changes.
 */
import { presentComponent, type ModelFamily } from '../core/family';
import type { ModelFolder } from '../core/folder';
import { modelError } from '../errors';
import { sd3 } from './sd3';
import { webdit } from './webdit';
import { zimage } from './zimage';

export const FAMILIES: readonly ModelFamily[] = [webdit, sd3, zimage];

/** The family of a folder, checked before any large download, with its components present. */
export function detectFamily(folder: ModelFolder, families: readonly ModelFamily[] = FAMILIES): ModelFamily {
  const family = families.find((f) => f.detect(folder));
  if (!family && !folder.files.has('model_index.json')) {
    throw modelError(
      `The model folder ${folder.base} has no model_index.json, and its files are not those of a model family WebDiT knows (supported: ${families.map((f) => f.name).join(', ')}).`,
      'Use a model folder in diffusers layout (docs/model-folder.md), or a Z-Image-Turbo export in the webnn layout (onnx/transformer_model_q4f16.onnx, ...).',
    );
  }
  if (!family) {
    throw modelError(
      `This model (${folder.index._class_name}${folder.manifest?.family ? `, family "${folder.manifest.family}"` : ''}) is not supported by this version of WebDiT (supported: ${families.map((f) => f.name).join(', ')}).`,
      'Load a model of a supported family, or update the studio.',
    );
  }
  const missing = family.requiredComponents.filter((c) => presentComponent(folder, c) === null).map((c) => c.replace('|', ' or '));
  if (missing.length) {
    throw modelError(`The ${family.name} model at ${folder.base} lacks the component(s) ${missing.join(', ')}.`, 'Use a complete model folder (docs/model-folder.md lists the components).');
  }
  family.check?.(folder);
  return family;
}
