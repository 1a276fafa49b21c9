// Package wasmbuild builds the browser's swarm node (player/wasm) the one
// way both the generator and the staleness test build it, so that the two
// give the same bytes.
package wasmbuild

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Package is the browser entry point's import path.
const Package = "github.com/seedcast/seedcast/player/wasm"

// Build compiles Package for GOOS=js GOARCH=wasm, stripped and
// reproducible (-trimpath, no VCS stamp), and returns the .wasm with the
// toolchain's wasm_exec.js, which must match it.
func Build() (wasm, glue []byte, err error) {
	dir, err := os.MkdirTemp("", "seedcast-wasm")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "seedcast.wasm")
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", out, Package)
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm", "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, nil, fmt.Errorf("wasmbuild: go build: %w\n%s", err, stderr.Bytes())
	}
	if wasm, err = os.ReadFile(out); err != nil {
		return nil, nil, err
	}
	root, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		return nil, nil, fmt.Errorf("wasmbuild: go env GOROOT: %w", err)
	}
	glue, err = os.ReadFile(filepath.Join(strings.TrimSpace(string(root)), "lib", "wasm", "wasm_exec.js"))
	if err != nil {
		return nil, nil, fmt.Errorf("wasmbuild: %w", err)
	}
	return wasm, glue, nil
}
