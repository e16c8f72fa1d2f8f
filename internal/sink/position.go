package sink

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sync"
)

// position is how far a sink got, as kept in its file.
//
// Between windows only To is set: every sample stored at or before To
// (Unix milliseconds) was delivered or refused for good. While a window
// (From, To] is being sent, Acked counts, per shard, the batches the sink
// accepted so far; the window's batches are formed the same way on every
// read (same Shards and BatchSize), so a restart sends only the rest.
type position struct {
	From      int64 `json:"from,omitempty"`
	To        int64 `json:"to"`
	Shards    int   `json:"shards,omitempty"`
	BatchSize int   `json:"batchSize,omitempty"`
	Acked     []int `json:"acked,omitempty"`
}

// positionFile is a sink's position in <dir>/<name>.position.json, replaced
// atomically on every save.
type positionFile struct {
	path string
	mu   sync.Mutex
	pos  position
}

// get returns the last saved position.
func (p *positionFile) get() position {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.pos
	s.Acked = append([]int(nil), s.Acked...)
	if p.pos.Acked == nil {
		s.Acked = nil
	}
	return s
}

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

func openPosition(dir, name string) (*positionFile, error) {
	if !validName.MatchString(name) {
		return nil, fmt.Errorf("sink name %q: want letters, digits, '_', '.' and '-'", name)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("sink %s: %w", name, err)
	}
	p := &positionFile{path: filepath.Join(dir, name+".position.json")}
	b, err := os.ReadFile(p.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return p, nil
	case err != nil:
		return nil, fmt.Errorf("sink %s: %w", name, err)
	}
	if err := json.Unmarshal(b, &p.pos); err != nil {
		return nil, fmt.Errorf("sink %s: position file %s: %w (delete it to start the sink at the present)", name, p.path, err)
	}
	if st := p.pos; st.To < 0 || (st.Acked != nil && (st.From > st.To || len(st.Acked) != st.Shards)) {
		return nil, fmt.Errorf("sink %s: position file %s is inconsistent (delete it to start the sink at the present)", name, p.path)
	}
	return p, nil
}

func (p *positionFile) save(s position) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	tmp := p.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o640); err != nil {
		return fmt.Errorf("saving the sink position: %w", err)
	}
	if err := os.Rename(tmp, p.path); err != nil {
		return fmt.Errorf("saving the sink position: %w", err)
	}
	if s.Acked != nil {
		s.Acked = append([]int(nil), s.Acked...)
	}
	p.pos = s
	return nil
}
