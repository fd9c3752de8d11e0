package triggers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// consume pulls messages from cons and runs handle on each, at most
// inFlight at once, until ctx ends or the subscription fails. Once ctx
// ends it waits up to grace for the handlers running, then cancels their
// context and waits for them to return. It returns nil when ctx ended,
// else what broke the subscription.
func consume(ctx context.Context, cons jetstream.Consumer, inFlight int, grace time.Duration, handle func(context.Context, jetstream.Msg)) error {
	it, err := cons.Messages(jetstream.PullMaxMessages(inFlight))
	if err != nil {
		return fmt.Errorf("subscribing: %w", err)
	}
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		select {
		case <-ctx.Done():
		case <-stopped:
		}
		it.Stop()
	}()

	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	var wg sync.WaitGroup
	defer func() {
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(grace):
			cancelWork()
			<-done
		}
	}()
	slots := make(chan struct{}, inFlight)
	for {
		slots <- struct{}{}
		msg, err := it.Next()
		if err != nil {
			<-slots
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return ctx.Err()
			}
			return fmt.Errorf("fetching: %w", err)
		}
		wg.Go(func() {
			defer func() { <-slots }()
			handle(work, msg)
		})
	}
}

// keepLease tells JetStream every period that msg is still being worked
// on, so that a call longer than the AckWait is not redelivered, until
// stop is called. It does nothing when the work cannot outlast one period.
func keepLease(msg jetstream.Msg, period, longest time.Duration) (stop func()) {
	if longest <= period {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	return func() { close(done) }
}
