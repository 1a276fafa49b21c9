package call

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// chatStore keeps rooms' end-to-end encrypted chat lines on disk, so that
// a room's history survives a restart of the server. Only sealed lines
// (ChatLine.Sealed: ciphertext the server cannot read) are written; a
// plain line never touches the disk. It is bounded three ways: lines per
// room, rooms (the least recently written go first), and age.
//
// One file per room, named by a hash of the room's name, of JSON lines. A
// torn or corrupt line (a crash mid-write, a bad disk) is skipped and
// counted, and the rest of the file still loads.
type chatStore struct {
	dir      string
	perRoom  int
	maxRooms int
	maxAge   time.Duration
	log      *slog.Logger
	corrupt  func() // counts a skipped line

	mu     sync.Mutex
	counts map[string]int // lines in each file written since start
}

// ChatStoreDefaults bound the on-disk history.
const (
	DefaultChatRooms  = 1000
	DefaultChatMaxAge = 30 * 24 * time.Hour
)

func openChatStore(dir string, perRoom, maxRooms int, maxAge time.Duration, log *slog.Logger, corrupt func()) (*chatStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%w: chat history: %v", ErrBadParams, err)
	}
	return &chatStore{
		dir: dir, perRoom: perRoom, maxRooms: maxRooms, maxAge: maxAge, log: log, corrupt: corrupt,
		counts: map[string]int{},
	}, nil
}

func (cs *chatStore) path(room string) string {
	h := sha256.Sum256([]byte("seedcast chat v1\x00" + room))
	return filepath.Join(cs.dir, hex.EncodeToString(h[:16])+".jsonl")
}

// load returns a room's stored lines, oldest first, at most perRoom and
// none older than maxAge.
func (cs *chatStore) load(room string, now time.Time) []ChatLine {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	lines, _ := cs.readLocked(cs.path(room), now)
	return lines
}

func (cs *chatStore) readLocked(p string, now time.Time) ([]ChatLine, int) {
	f, err := os.Open(p)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			cs.log.Warn("chat history unreadable", "err", err)
		}
		return nil, 0
	}
	defer f.Close()
	var out []ChatLine
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 16<<10), MaxMessageBytes)
	oldest := now.Add(-cs.maxAge).UnixMilli()
	for sc.Scan() {
		n++
		var l ChatLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil || l.Sealed == "" || checkSealed(l.Sealed) != nil {
			cs.corrupt()
			continue
		}
		if l.At < oldest {
			continue
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		cs.corrupt()
	}
	if len(out) > cs.perRoom {
		out = out[len(out)-cs.perRoom:]
	}
	return out, n
}

// add appends a sealed line to a room's file; the file is rewritten with
// its last perRoom lines when it grows past twice that.
func (cs *chatStore) add(room string, l ChatLine, now time.Time) error {
	if l.Sealed == "" {
		return nil // plain lines are never stored
	}
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	p := cs.path(room)
	n, seen := cs.counts[p]
	if !seen {
		_, n = cs.readLocked(p, now)
		if n == 0 {
			cs.evictLocked(p, now)
		}
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("chat history: %w", err)
	}
	_, err = f.Write(append(b, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("chat history: %w", err)
	}
	n++
	if n > 2*cs.perRoom {
		lines, _ := cs.readLocked(p, now)
		var buf bytes.Buffer
		for _, l := range lines {
			b, _ := json.Marshal(l)
			buf.Write(b)
			buf.WriteByte('\n')
		}
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, buf.Bytes(), 0o600); err != nil {
			return fmt.Errorf("chat history: %w", err)
		}
		if err := os.Rename(tmp, p); err != nil {
			return fmt.Errorf("chat history: %w", err)
		}
		n = len(lines)
	}
	cs.counts[p] = n
	return nil
}

// evictLocked makes room for a new file: the least recently written files
// beyond maxRooms-1, and files past maxAge, go.
func (cs *chatStore) evictLocked(keep string, now time.Time) {
	ents, err := os.ReadDir(cs.dir)
	if err != nil {
		return
	}
	type file struct {
		p   string
		mod time.Time
	}
	var files []file
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".jsonl") {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		files = append(files, file{filepath.Join(cs.dir, e.Name()), info.ModTime()})
	}
	slices.SortFunc(files, func(a, b file) int { return a.mod.Compare(b.mod) })
	cut := now.Add(-cs.maxAge)
	for i, f := range files {
		if f.p == keep {
			continue
		}
		if len(files)-i >= cs.maxRooms || f.mod.Before(cut) {
			_ = os.Remove(f.p)
			delete(cs.counts, f.p)
		}
	}
}
