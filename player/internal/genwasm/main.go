// Command genwasm builds the browser's swarm node (../../wasm) to
// WebAssembly and writes what package player embeds:
//
//	web/seedcast.wasm.br   the stripped .wasm, brotli quality 11
//	web/seedcast.wasm.sha256  the SHA-256 of the raw .wasm, hex
//	web/wasm_exec.js       the Go toolchain's JavaScript glue for it
//
// Run it with `go generate ./player` after changing anything the browser
// build imports; TestWasmFresh fails when the committed files are stale.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/andybalholm/brotli"

	"github.com/seedcast/seedcast/player/internal/wasmbuild"
)

func main() {
	out := flag.String("out", "web", "directory to write into")
	flag.Parse()
	raw, glue, err := wasmbuild.Build()
	if err != nil {
		log.Fatal(err)
	}
	var br bytes.Buffer
	w := brotli.NewWriterLevel(&br, brotli.BestCompression)
	if _, err := w.Write(raw); err != nil {
		log.Fatal(err)
	}
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	files := map[string][]byte{
		"seedcast.wasm.br":     br.Bytes(),
		"seedcast.wasm.sha256": []byte(hex.EncodeToString(sum[:]) + "\n"),
		"wasm_exec.js":         glue,
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(*out, name), data, 0o644); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Printf("seedcast.wasm: %d bytes raw, %d brotli\n", len(raw), br.Len())
}
