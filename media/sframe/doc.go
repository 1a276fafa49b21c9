// Package sframe is SFrame (RFC 9605) for Seedcast's end-to-end encrypted
// calls: the header codec, the RFC key schedule and AEAD for the cipher
// suites AES_128_GCM_SHA256_128 (0x0004) and AES_256_GCM_SHA512_128
// (0x0005), and the "seedcast SFrame profile v1" on top of them: a clear
// codec prefix authenticated as the RFC's metadata, key ids that carry a
// random sender id and a key epoch, and per-sender keys derived from the
// call's shared base key (Sender, Receiver). It knows frame bytes only,
// nothing of networks; player/web/js/e2ee/sframe.js is the browser's
// byte-for-byte twin, and docs/e2ee.md describes the format.
package sframe
