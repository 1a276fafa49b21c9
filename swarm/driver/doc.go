// Package driver is the glue every real driver of a swarm node shares: the
// event loop around an I/O-free core (package swarm/core). Loop feeds the
// core every input with the time under one mutex and carries out what it
// outputs, in order: frames onto links, dials, fetches, pings and manifest
// polls on goroutines of their own, reports to the tracker through a
// bounded queue, chunks that are ready to OnReady. It runs the core's
// timers from NextWake, one reader per link (wire.Splitter → ReceiveFrame,
// BadInput, LinkClosed), and answers each offer the tracker relays on its
// own goroutine, a bounded number at once.
//
// The world comes in through small interfaces defined here (Link, Linker,
// Tracker, Origin, and the optional Pinger; Loop.Follow takes a Notifier),
// so that the package imports only the core, the wire codec, the manifest
// and the tracker's protocol types: the native driver (package swarm:
// pion, HTTP, a WebSocket library) and the browser's (package
// swarm/browser: pion's js build, fetch and WebSocket through syscall/js)
// both build on it, and so cannot drift apart. WaitLive and FromWelcome are
// the steps of a start they share.
//
// The browser's .wasm carries this package, so its method sets are chosen
// with the Go linker in mind: a method called through an interface keeps,
// on every type ever stored in an interface, the methods of the same name
// and signature. Hence no Close() or Close() error here (pion's ICE agent,
// reflect and others have them): a Link's Close takes the reason, and the
// driver closes its tracker and linker itself, in Params.Leave.
package driver
