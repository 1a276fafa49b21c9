//go:build !js

package browser

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestWasm runs this package's tests (js_test.go) compiled for GOOS=js
// GOARCH=wasm under Node.js, with Go's own go_js_wasm_exec: fetch bodies
// and their bounds, promises, and the tracker's handling of bad messages.
// It is skipped when go or node is not on PATH.
func TestWasm(t *testing.T) {
	for _, tool := range []string{"go", "node"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not on PATH: the js/wasm tests of this package cannot run", tool)
		}
	}
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatalf("go env GOROOT: %v", err)
	}
	wasmExec := filepath.Join(strings.TrimSpace(string(goroot)), "lib", "wasm", "go_js_wasm_exec")
	args := []string{"test", "-count=1", "-exec", wasmExec}
	if testing.Verbose() {
		args = append(args, "-v")
	}
	cmd := exec.Command("go", append(args, ".")...)
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm", "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("GOOS=js GOARCH=wasm go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("GOOS=js GOARCH=wasm go %s:\n%s", strings.Join(args, " "), out)
}
