import { describe, expect, it } from 'vitest';
import { KNOWN_MODELS, parseModelInput } from './known';
import { hubFromSearch, loadOptionsFromSearch, urlWithModel } from './url';

const HUB = 'https://huggingface.co';

describe('parseModelInput: what the paste box accepts', () => {
  it('a repo id resolves against the hub (a mirror or local server from ?hub=)', () => {
    expect(parseModelInput(' webdit/sd3-tiny ', HUB)).toEqual({ model: 'webdit/sd3-tiny', url: 'https://huggingface.co/webdit/sd3-tiny/resolve/main/', hub: HUB, revision: 'main' });
    expect(parseModelInput('webnn/Z-Image-Turbo', 'http://127.0.0.1:9000/', 'v2')).toMatchObject({ url: 'http://127.0.0.1:9000/webnn/Z-Image-Turbo/resolve/v2/' });
  });

  it('a Hub repo page becomes its repo id, with the revision of /tree/<rev>', () => {
    expect(parseModelInput('https://huggingface.co/webnn/Z-Image-Turbo', HUB)).toEqual({ model: 'webnn/Z-Image-Turbo', url: 'https://huggingface.co/webnn/Z-Image-Turbo/resolve/main/', hub: HUB, revision: 'main' });
    expect(parseModelInput('https://hf.co/a/b/tree/refs%2Fpr%2F1', HUB)).toMatchObject({ model: 'a/b', url: 'https://hf.co/a/b/resolve/refs%2Fpr%2F1/', revision: 'refs/pr/1' });
  });

  it('a folder URL is loaded as it is (ending in /), its manifest.json URL as its folder', () => {
    expect(parseModelInput('http://localhost:8080/models/x', HUB)).toEqual({ model: 'http://localhost:8080/models/x/', url: 'http://localhost:8080/models/x/', hub: null, revision: null });
    expect(parseModelInput('https://example.com/m/manifest.json', HUB)).toMatchObject({ url: 'https://example.com/m/' });
  });

  it('anything else is refused with what it is and what would do', () => {
    expect(parseModelInput('', HUB)).toEqual({ error: 'Type a Hub repo id (owner/name) or the URL of a model folder.' });
    expect(parseModelInput('just-a-name', HUB)).toEqual({ error: '"just-a-name" is neither a Hub repo id (owner/name, letters, digits, - _ .) nor an http(s) URL of a model folder.' });
    expect(parseModelInput('a/b/c', HUB)).toMatchObject({ error: expect.stringMatching(/^"a\/b\/c" is neither/) });
    expect(parseModelInput('javascript:alert(1)', HUB)).toEqual({ error: '"javascript:" URLs cannot be loaded: use an http(s) URL of a model folder, or a Hub repo id.' });
    expect(parseModelInput('../etc', HUB)).toMatchObject({ error: expect.any(String) });
    expect(parseModelInput('a/..', HUB)).toEqual({ error: '"a/.." is not a Hub repo id: a name cannot contain "..".' });
  });

  it('known models: a repo id only for one that loads as it is; sizes marked estimate where they are', () => {
    const z = KNOWN_MODELS.find((k) => k.key === 'z-image-turbo')!;
    expect(z.repo).toBe('webnn/Z-Image-Turbo');
    expect(KNOWN_MODELS.filter((k) => k.repo === null).every((k) => k.howTo)).toBe(true);
    expect(KNOWN_MODELS.filter((k) => k.family === 'sd3').every((k) => k.optional?.label === 'T5')).toBe(true);
  });
});

describe('the page URL of a model choice', () => {
  it('?t5= as skipComponents', () => {
    expect(loadOptionsFromSearch('?t5=off')).toEqual({ skipComponents: ['text_encoder_3', 'tokenizer_3'] });
    expect(loadOptionsFromSearch('?t5=on')).toEqual({ skipComponents: [] });
    expect(loadOptionsFromSearch('?t5=maybe')).toBeUndefined();
    expect(loadOptionsFromSearch('')).toBeUndefined();
  });

  it('writes model, revision, hub and t5, keeps the rest, and the embedded model clears them', () => {
    const page = 'http://localhost:5173/?backend=wasm&model=old/one&t5=off';
    expect(urlWithModel(page, { model: 'webdit/sd3-tiny', hub: 'http://127.0.0.1:9/', revision: 'main', t5: true })).toBe('http://localhost:5173/?backend=wasm&model=webdit%2Fsd3-tiny&hub=http%3A%2F%2F127.0.0.1%3A9%2F&t5=on');
    expect(urlWithModel(page, { model: 'a/b', hub: HUB, revision: 'v1' })).toBe('http://localhost:5173/?backend=wasm&model=a%2Fb&revision=v1');
    expect(urlWithModel('http://h/?hub=http%3A%2F%2Fx&model=a%2Fb', { model: 'c/d' })).toBe('http://h/?hub=http%3A%2F%2Fx&model=c%2Fd');
    expect(urlWithModel(page, { model: null })).toBe('http://localhost:5173/?backend=wasm');
  });

  it('the hub repo ids resolve against', () => {
    expect(hubFromSearch('?hub=http://127.0.0.1:9/')).toBe('http://127.0.0.1:9');
    expect(hubFromSearch('')).toBe(HUB);
  });
});
