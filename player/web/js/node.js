// Loads the browser's swarm node, the Go node core compiled to
// WebAssembly, once per page, and returns its global API (globalThis.seedcast:
// start, setRelay, setQuality, stop). See player/wasm for that API.

let loading = null;

export function wasmURL() {
  const meta = document.querySelector('meta[name="seedcast-wasm"]');
  if (!meta) throw new Error('the page names no seedcast.wasm');
  return meta.content;
}

// loadNode fetches and starts the .wasm. The fetch starts at once, so call
// it early: the page's own modules and the MSE set-up run meanwhile.
export function loadNode() {
  if (!loading) {
    loading = (async () => {
      await import('/assets/wasm_exec.js'); // defines globalThis.Go
      const go = new globalThis.Go();
      const resp = fetch(wasmURL());
      let instance;
      if (WebAssembly.instantiateStreaming) {
        ({ instance } = await WebAssembly.instantiateStreaming(resp, go.importObject));
      } else {
        const buf = await (await resp).arrayBuffer();
        ({ instance } = await WebAssembly.instantiate(buf, go.importObject));
      }
      performance.mark('seedcast:wasm-compiled');
      go.run(instance); // runs until the page goes; main defines seedcast first
      if (!globalThis.seedcast) throw new Error('the node did not start');
      return globalThis.seedcast;
    })();
    loading.catch(() => { loading = null; }); // a failed load may be retried
  }
  return loading;
}
