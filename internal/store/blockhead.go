package store

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"time"

	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// BlockDuration is the range of the blocks the store's head cuts (the TSDB
// default, tsdb.DefaultBlockDuration), on a grid of its multiples since the
// Unix epoch. Blocks written from outside the head (a backfill, a replica's
// fill from its peer) use the same grid.
const BlockDuration = 2 * time.Hour

// BlockHead gathers the samples of one block [Mint, Maxt) (Unix ms) in a
// TSDB head of its own, without a WAL, and writes them as a TSDB block
// (Flush): how history that did not come through the store's own head is
// added to a data directory. The TSDB loads blocks that appear in its
// directory at its next reload.
type BlockHead struct {
	Mint, Maxt int64
	Head       *tsdb.Head
	chunkDir   string
}

// NewBlockHead opens a head for the block [mint, maxt), its chunks in a new
// directory under tmpRoot (which must be writable: a pod's root file
// system may not be).
func NewBlockHead(tmpRoot string, mint, maxt int64) (*BlockHead, error) {
	chunkDir, err := os.MkdirTemp(tmpRoot, "head-")
	if err != nil {
		return nil, fmt.Errorf("block head: chunk directory: %w", err)
	}
	opts := tsdb.DefaultHeadOptions()
	opts.ChunkRange = BlockDuration.Milliseconds()
	opts.ChunkDirRoot = chunkDir
	h, err := tsdb.NewHead(nil, slog.New(slog.DiscardHandler), nil, nil, opts, nil)
	if err != nil {
		_ = os.RemoveAll(chunkDir)
		return nil, fmt.Errorf("block head: %w", err)
	}
	if err := h.Init(math.MinInt64); err != nil {
		_ = h.Close()
		_ = os.RemoveAll(chunkDir)
		return nil, fmt.Errorf("block head: %w", err)
	}
	return &BlockHead{Mint: mint, Maxt: maxt, Head: h, chunkDir: chunkDir}, nil
}

// Flush writes the head's samples in [Mint, Maxt) as one block in dir and
// returns the block's directory name (its ULID); "" when the head holds no
// series.
func (h *BlockHead) Flush(ctx context.Context, dir string, log *slog.Logger) (string, error) {
	if h.Head.NumSeries() == 0 {
		return "", nil
	}
	c, err := tsdb.NewLeveledCompactor(ctx, nil, log, []int64{BlockDuration.Milliseconds()}, chunkenc.NewPool(), nil)
	if err != nil {
		return "", fmt.Errorf("block head: compactor: %w", err)
	}
	// RangeHead's maxt is inclusive; the block's is not.
	ids, err := c.Write(dir, tsdb.NewRangeHead(h.Head, h.Mint, h.Maxt-1), h.Mint, h.Maxt, nil)
	if err != nil {
		return "", fmt.Errorf("write block [%s, %s): %w", msTime(h.Mint), msTime(h.Maxt), err)
	}
	if len(ids) == 0 {
		return "", nil
	}
	return ids[0].String(), nil
}

// Close closes the head and removes its chunks.
func (h *BlockHead) Close() error {
	err := h.Head.Close()
	if rerr := os.RemoveAll(h.chunkDir); err == nil {
		err = rerr
	}
	return err
}

// BlockRanges cuts [mint, maxt) (Unix ms) at every multiple of
// BlockDuration: the ranges of the blocks that hold it.
func BlockRanges(mint, maxt int64) [][2]int64 {
	bd := BlockDuration.Milliseconds()
	var out [][2]int64
	for b := floorDiv(mint, bd) * bd; b < maxt; b += bd {
		out = append(out, [2]int64{max(b, mint), min(b+bd, maxt)})
	}
	return out
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func msTime(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339) }
