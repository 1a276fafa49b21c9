//go:build js && wasm

// Command wasm is the browser entry point of the swarm node: the node core
// and its browser driver (package swarm/browser) compiled to WebAssembly
// (GOOS=js GOARCH=wasm), with a small global JavaScript API for the web
// player's ES modules:
//
//	const go = new Go();                       // wasm_exec.js
//	const {instance} = await WebAssembly.instantiateStreaming(fetch("seedcast.wasm"), go.importObject);
//	go.run(instance);                          // defines globalThis.seedcast
//	await seedcast.start({server: "", stream: "demo", relayKbps: 1000},
//	    (info, bytes) => { ... },              // a verified chunk: append it to MSE
//	    (stats) => { ... });                   // once a second
//	seedcast.setRelay(0);                      // relay off
//	await seedcast.stop();
//
// start's options: server (the origin, default the page's), stream, token
// (a private stream's viewer token), relayKbps (0: relay off), quality
// ("auto", "all", "audio-only", "720p"), bufferMs and startupMs (the
// playback delay behind the live edge, and the extra wait at start),
// bufferedMs (a function: the media the player holds ahead of its playhead)
// and onQuality (a function given the renditions carried whenever adaptive
// quality, scheduler.ABR under "auto", steps the video up or down). It
// returns a promise that resolves, once the node has joined the swarm, with
// {renditions: [{name, kind, codec, width, height, frameRate, sampleRate,
// channels}], selected: [names carried]}, and rejects with an Error saying
// why it could not. onReady(info, bytes) gets each init segment and media
// chunk in order: info is {kind: "init"|"chunk", rendition, seq,
// mediaTimeUs, durationUs, independent, discontinuity, deadline (Date.now()
// milliseconds when it plays; 0 for init segments), ingestMs (when ingest
// finished it, Date.now() milliseconds), hash}, bytes a
// Uint8Array of its own. Each rendition's chunks come in sequence order
// after its init segment, starting at an independent chunk; a chunk nobody
// delivered is given up 300 ms before the next one's deadline
// (scheduler.Playout). onStats(stats) gets, once a second, the object `seedcast
// viewer --stats-json` writes (t, peers, bytesFromPeers, bytesFromOrigin,
// bytesFromSeed, bytesUploaded, chunksOnTime, chunksLate, latencyP50Ms,
// latencyP95Ms, maxDepth, relayBudgetKbps, throttled, rejected) plus
// chunks, rttMs and offload (bytes from peers ÷ all media bytes received).
// setRelay(kbps) returns an Error for a non-number. setQuality(quality)
// returns a promise of the renditions carried after the change; the init
// segment of a rendition taken up comes through onReady before its chunks.
// One node runs at a time; stop returns a promise that resolves when it has
// left. onReady runs while the node holds a lock: it may call setRelay,
// setQuality and stop (they run apart) but should return soon.
//
// The build is kept lean: no net/http, no WebSocket library, none of the
// server's packages (TestLean in this directory checks, and logs the
// .wasm's size raw, gzip and brotli).
package main
