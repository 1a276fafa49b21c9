package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startDevice runs `seedcast device` with args, its log kept as a
// serverProc's (waitLog).
func startDevice(t *testing.T, args ...string) *serverProc {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"device", "--log-format", "json"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	proc := &serverProc{pid: cmd.Process.Pid, more: make(chan struct{})}
	exited := make(chan error, 1)
	go func() {
		proc.readLogs(stderr, nil)
		exited <- cmd.Wait()
	}()
	proc.stop = func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("device exit: %v", err)
			}
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("device did not stop within 10 s of SIGTERM")
		}
	}
	t.Cleanup(proc.stop)
	return proc
}

// TestBrowserNativeDevice: a native device (`seedcast device`, its own
// identity in a file) and a browser exchange contact links; the browser
// rings the device, which answers, joins the call and decrypts the
// browser's video with the key both derived from their X25519 keys and the
// call's salt: the same derivation in Go and in JavaScript.
func TestBrowserNativeDevice(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := startServer(t, "--webrtc-loopback-only")
	idFile := filepath.Join(t.TempDir(), "device.json")
	out, err := exec.Command(binary, "device", "--server", base, "--identity", idFile, "--name", "Hall kiosk", "--print-link").Output()
	if err != nil {
		t.Fatalf("device --print-link: %v", err)
	}
	deviceLink := strings.TrimSpace(string(out))

	bctx := chromium(t, ctx)
	alice := openTab(t, bctx, "alice", base+"/")
	_, aLink := identityOf(alice, "Alice")
	addContact(alice, deviceLink)
	dev := startDevice(t, "--server", base, "--identity", idFile, "--contact", aLink, "--answer", "--webrtc-loopback-only")
	dev.waitLog(t, ctx, `"msg":"presence: online"`)

	alice.reload(base + "/")
	var devKey string
	alice.eval(fmt.Sprintf(`import('/assets/js/identity.js').then((id) => id.parseContactLink(%q).key)`, deviceLink), &devKey)
	alice.until(ctx, "the device online", fmt.Sprintf(`(async () => (await (await import('/assets/js/presence.js')).Presence.get())?.online.has(%q))()`, devKey))
	alice.eval(fmt.Sprintf(`import('/assets/js/ringer.js').then((r) => { r.startCall({ key: %q, name: 'Hall kiosk' }, { video: true }); return true; })`, devKey), nil)
	alice.until(ctx, "Alice in the call", onCallPage)
	dev.waitLog(t, ctx, `"msg":"in the call"`, `"e2ee":true`)
	alice.until(ctx, "the call active", `__call.ring?.state === 'active'`)
	// The device reports its counts every 2 s: wait for 30 decrypted frames.
	for seen := 0; ; {
		dev.mu.Lock()
		lines, more := dev.logs[seen:], dev.more
		seen = len(dev.logs)
		dev.mu.Unlock()
		enough := false
		for _, l := range lines {
			var rec struct {
				Msg       string
				Decrypted int
			}
			enough = enough || json.Unmarshal([]byte(l), &rec) == nil && rec.Msg == "call media" && rec.Decrypted >= 30
		}
		if enough {
			break
		}
		select {
		case <-more:
		case <-ctx.Done():
			t.Fatal("the device never decrypted 30 frames")
		}
	}
	alice.eval(`document.getElementById('leave').click(), true`, nil)
	dev.waitLog(t, ctx, `"msg":"left the call"`)
	dev.mu.Lock()
	var rec struct{ Frames, Decrypted, Failed int }
	for _, l := range dev.logs {
		if strings.Contains(l, `"msg":"left the call"`) {
			_ = json.Unmarshal([]byte(l), &rec)
		}
	}
	dev.mu.Unlock()
	t.Logf("the native device got %d video frames: %d decrypted, %d failed", rec.Frames, rec.Decrypted, rec.Failed)
	if rec.Decrypted < 30 || rec.Failed > 0 {
		t.Fatalf("the native device: %d frames, %d decrypted, %d failed", rec.Frames, rec.Decrypted, rec.Failed)
	}
}
