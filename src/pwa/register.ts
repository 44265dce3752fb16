/**
 * Registers the service worker (/sw.js, production builds only: `npm run dev` serves no sw.js and
 * must not cache its modules). Registration waits for the page's load event so the first visit's
 * downloads go first. A browser without service workers, or one that refuses them (private mode,
 * Playwright's `serviceWorkers: 'block'`), just runs online as before.
 */
export function registerServiceWorker(url: string): void {
  if (!import.meta.env.PROD || typeof navigator === 'undefined' || !('serviceWorker' in navigator)) return;
  const register = async () => {
    try {
      await navigator.serviceWorker.register(url, { scope: new URL('.', new URL(url, location.href)).pathname });
    } catch (e) {
      console.info(`Offline use is unavailable: the service worker was not registered (${e instanceof Error ? e.message : String(e)}).`);
    }
  };
  if (document.readyState === 'complete') void register();
  else window.addEventListener('load', () => void register(), { once: true });
}
