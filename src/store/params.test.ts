import { describe, expect, it } from 'vitest';
import { modelUrlFromSearch } from './params';

const EMBEDDED = '/models/webdit-tiny/';

describe('?model= picks the model folder', () => {
  it.each([
    ['', { url: EMBEDDED }],
    ['?model=', { url: EMBEDDED }],
    ['?model=stabilityai/stable-diffusion-3.5-medium', { url: 'https://huggingface.co/stabilityai/stable-diffusion-3.5-medium/resolve/main/' }],
    ['?model=webnn/Z-Image-Turbo&revision=v2&hub=http://localhost:8080/', { url: 'http://localhost:8080/webnn/Z-Image-Turbo/resolve/v2/' }],
    ['?model=http://localhost:9000/m/sd3-tiny', { url: 'http://localhost:9000/m/sd3-tiny/' }],
    ['?model=/models/other/', { url: '/models/other/' }],
    ['?model=not a repo', { error: '"not a repo" is neither a Hub repo id (owner/name) nor a model folder URL.' }],
    ['?model=a/b/c', { error: '"a/b/c" is neither a Hub repo id (owner/name) nor a model folder URL.' }],
  ])('%s', (search, want) => {
    expect(modelUrlFromSearch(search, EMBEDDED)).toEqual(want);
  });
});
