package app

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestGroup(t *testing.T) {
	waitEnd := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	for _, tt := range []struct {
		name string
		part func(context.Context) error
		want string // "" : the group keeps running until its parent ends
	}{
		{"fails", func(context.Context) error { return errors.New("listen: address in use") }, "metrics API: listen: address in use"},
		{"returns early", func(context.Context) error { return nil }, "metrics API: stopped unexpectedly"},
		{"runs until the end", waitEnd, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			parent, cancelParent := context.WithCancel(context.Background())
			defer cancelParent()
			ctx, g := newGroup(parent, slog.New(slog.DiscardHandler))
			g.run("scrape", waitEnd)
			g.run("metrics API", tt.part)
			if tt.want == "" {
				select {
				case <-ctx.Done():
					t.Fatalf("the group ended: %v", context.Cause(ctx))
				case <-time.After(50 * time.Millisecond):
				}
				cancelParent() // a signal
				g.stop()
				if err := g.err(); err != nil {
					t.Errorf("after the parent ended: %v, want nil", err)
				}
				return
			}
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("a failed part did not stop the group")
			}
			g.stop() // the other part returns too
			if err := g.err(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err %v, want %q", err, tt.want)
			}
		})
	}
}
