package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
)

// group runs kubemon's parts (scrape loops, pipeline, discovery poller,
// metrics API) until its context ends. A part that stops before that, with
// an error or without one, stops them all with that cause, so kubemon exits
// with an error (and a supervisor restarts it) instead of living on half
// dead.
type group struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	log    *slog.Logger
	wg     sync.WaitGroup
}

func newGroup(parent context.Context, log *slog.Logger) (context.Context, *group) {
	ctx, cancel := context.WithCancelCause(parent)
	return ctx, &group{ctx: ctx, cancel: cancel, log: log}
}

// run starts f(ctx) as the part called name.
func (g *group) run(name string, f func(context.Context) error) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		err := f(g.ctx)
		if g.ctx.Err() != nil {
			return // shutting down
		}
		if err == nil {
			err = errors.New("stopped unexpectedly")
		}
		g.log.Error(name+" failed; stopping kubemon", "err", err)
		g.cancel(fmt.Errorf("%s: %w", name, err))
	}()
}

// err is why the group's context ended: nil while it runs and when the
// parent context ended, else the failure of the first part that stopped.
func (g *group) err() error {
	cause := context.Cause(g.ctx)
	if cause == nil || errors.Is(cause, context.Canceled) || errors.Is(cause, context.DeadlineExceeded) {
		return nil
	}
	return cause
}

// stop ends the group's context and waits for every part to return.
func (g *group) stop() {
	g.cancel(nil)
	g.wg.Wait()
}
