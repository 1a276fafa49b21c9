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
      workerTimersWhenHidden(go);
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

// workerTimersWhenHidden makes the Go runtime's timers (every time.Sleep,
// timer and ticker of the node) run on a worker's clock while the page is
// hidden, where the main thread's would fire once a second at best: a
// hidden tab keeps relaying at its budget. Visible, they are the page's
// own. (It replaces two imports of Go's wasm_exec.js with the same
// contract: scheduleTimeoutEvent(delay int64) int32, clearTimeoutEvent(id).)
export function workerTimersWhenHidden(go) {
  const meta = document.querySelector('meta[name="seedcast-timers"]');
  if (!meta || typeof Worker !== 'function') return;
  let worker = null;
  const fire = new Map(); // id → callback, for timers on the worker
  const imports = go.importObject.gojs;
  const getInt64 = (addr) => go.mem.getUint32(addr, true) + go.mem.getInt32(addr + 4, true) * 4294967296;
  imports['runtime.scheduleTimeoutEvent'] = (sp) => {
    sp >>>= 0;
    const id = go._nextCallbackTimeoutID++;
    const ms = getInt64(sp + 8);
    const run = () => {
      go._resume();
      while (go._scheduledTimeouts.has(id)) go._resume(); // as wasm_exec.js does
    };
    if (document.hidden) {
      if (!worker) {
        worker = new Worker(meta.content);
        worker.onmessage = (e) => {
          const f = fire.get(e.data);
          if (f) { fire.delete(e.data); f(); }
        };
      }
      fire.set(id, run);
      go._scheduledTimeouts.set(id, -id); // not a setTimeout handle: cleared on the worker
      worker.postMessage({ id, ms });
    } else {
      go._scheduledTimeouts.set(id, setTimeout(run, ms));
    }
    go.mem.setInt32(sp + 16, id, true);
  };
  imports['runtime.clearTimeoutEvent'] = (sp) => {
    sp >>>= 0;
    const id = go.mem.getInt32(sp + 8, true);
    if (fire.delete(id)) worker.postMessage({ clear: id });
    else clearTimeout(go._scheduledTimeouts.get(id));
    go._scheduledTimeouts.delete(id);
  };
}
