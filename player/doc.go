// Package player serves Seedcast's web pages and the browser's swarm node.
//
// The pages are plain ES modules, HTML and CSS in web/, embedded in the
// binary: no npm, no bundler. Every asset is served at a content-hashed URL
// (/assets/js/player.3f2a9c1d.js) with a year-long immutable cache
// lifetime; pages name them through an import map, so modules import each
// other by their plain paths. Text assets and the .wasm are served
// compressed, brotli or gzip as Accept-Encoding allows.
//
// The .wasm (the node core and its browser driver, package player/wasm)
// is a committed, generated artifact: web/seedcast.wasm.br with the SHA-256
// of the raw build and the toolchain's wasm_exec.js, written by `go
// generate ./player`. A fresh clone's `go run ./cmd/seedcast serve` serves
// it with no build step, and TestWasmFresh fails when it no longer matches
// the code.
//
// Routes (Routes): GET / (live streams), /watch/{stream} (the player),
// /embed/{stream} (a chrome-less player for an iframe, postMessage API in
// docs/embed.md), /live/{stream}/dashboard and its JSON (the operator's
// view), /api/streams (the list as JSON), POST /api/uplink (the bounded,
// rate-limited upload test the player's auto-detect runs), /qr?text=… (a
// QR code as SVG), /assets/...; with CallPages, the meeting and voice
// channel pages and /contacts (this browser's identity and address book).
//
// Every page but the embed carries ringer.js: once the browser has an
// identity, it holds the presence WebSocket (js/presence.js) and shows an
// incoming call on whatever page is open. Identity, contacts and call
// history live in the browser (js/identity.js: IndexedDB, non-extractable
// WebCrypto keys); end-to-end encryption is js/e2ee/ (docs/e2ee.md).
//
// The package holds no swarm logic: the pages drive the node through the
// wasm's JavaScript API and only feed Media Source Extensions and draw.
package player

//go:generate go run ./internal/genwasm -out web
