package triggers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wisp-faas/wisp/api"
)

// retryBroken is how long a trigger waits before it tries again to set
// up its stream and consumer, or to resubscribe.
const retryBroken = time.Second

// ConsumerName is the durable JetStream consumer of a trigger.
func ConsumerName(namespace, name string) string { return "wisp_" + namespace + "_" + name }

// runner runs one trigger's consumer.
type runner struct {
	m       *Manager
	trigger *api.Trigger // as started; read-only
	policy  policy
	filter  filter
	sink    string
	log     *slog.Logger

	delivered, retried, deadLettered prometheus.Counter
	latency                          prometheus.Observer

	cancel context.CancelFunc
	done   chan struct{}

	// Counts of this node's runs of the trigger, and the part of them
	// already added to the stored status (touched by the manager's loop
	// only). On a cluster every node delivers a share of the events, so
	// each adds its own to the status instead of writing a total.
	nDelivered, nDeadLettered     atomic.Uint64
	repDelivered, repDeadLettered uint64

	mu       sync.Mutex
	cons     jetstream.Consumer // nil until set up
	setupErr string             // why the consumer is not running
	lastErr  string
	lastAt   time.Time
}

// newRunner prepares a runner for t, which must be defaulted and valid.
func (m *Manager) newRunner(t *api.Trigger) (*runner, error) {
	p, err := newPolicy(t.Spec.Delivery)
	if err != nil {
		return nil, err
	}
	r := &runner{
		m:            m,
		trigger:      t,
		policy:       p,
		filter:       newFilter(t.Spec.Filters),
		sink:         m.sinkURL(t),
		log:          m.log.With("trigger", t.Namespace+"/"+t.Name),
		delivered:    m.metrics.delivered.WithLabelValues(t.Namespace, t.Name),
		retried:      m.metrics.retried.WithLabelValues(t.Namespace, t.Name),
		deadLettered: m.metrics.deadLettered.WithLabelValues(t.Namespace, t.Name),
		latency:      m.metrics.latency.WithLabelValues(t.Namespace, t.Name),
		done:         make(chan struct{}),
		setupErr:     "starting",
	}
	return r, nil
}

// sinkURL is where a trigger's events go: a Function through the gateway
// (its tag's path when a tag is named), or the URI.
func (m *Manager) sinkURL(t *api.Trigger) string {
	ref := t.Spec.Sink.Ref
	if ref == nil {
		return t.Spec.Sink.URI
	}
	u := m.opts.GatewayURL + "/fn/" + url.PathEscape(t.Namespace) + "/" + url.PathEscape(ref.Name) + "/"
	if ref.Tag != "" {
		u += "@" + url.PathEscape(ref.Tag) + "/"
	}
	return u
}

// start runs the consumer until stop.
func (r *runner) start(ctx context.Context) {
	ctx, r.cancel = context.WithCancel(ctx)
	go func() {
		defer close(r.done)
		for ctx.Err() == nil {
			err := r.setup(ctx)
			if err == nil {
				err = consume(ctx, r.consumer(), int(r.trigger.Spec.MaxInFlight), r.m.opts.ShutdownGrace, r.handle)
			}
			if err == nil || ctx.Err() != nil {
				return
			}
			r.log.Warn("trigger consumer not running; retrying", "error", err)
			r.mu.Lock()
			r.setupErr = err.Error()
			r.mu.Unlock()
			select {
			case <-ctx.Done():
			case <-time.After(retryBroken):
			}
		}
	}()
}

// stop ends the consumer, letting deliveries in flight finish within the
// manager's grace.
func (r *runner) stop() {
	r.cancel()
	<-r.done
}

func (r *runner) consumer() jetstream.Consumer {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cons
}

// setup creates the stream when the trigger asks for it and creates or
// updates the durable consumer.
func (r *runner) setup(ctx context.Context) error {
	t := r.trigger
	src := t.Spec.Source
	js := r.m.opts.JetStream
	if src.CreateStream {
		if err := ensureStream(ctx, js, src.Stream, src.Subject); err != nil {
			return err
		}
	}
	cfg := jetstream.ConsumerConfig{
		Durable:       ConsumerName(t.Namespace, t.Name),
		Description:   "wisp trigger " + t.Namespace + "/" + t.Name,
		FilterSubject: src.Subject,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       r.policy.ackWait(),
		// No server-side limit: the runner counts attempts itself and
		// dead-letters the last one, and a dead letter that cannot be
		// published is retried instead of dropped by the server.
		MaxDeliver:    -1,
		MaxAckPending: int(t.Spec.MaxInFlight),
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	// Events from the trigger's creation on, even those published before
	// the node got to set up its consumer.
	if !t.CreationTimestamp.IsZero() {
		start := t.CreationTimestamp.UTC()
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &start
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, src.Stream, cfg)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("stream %s does not exist: create it, or set spec.source.createStream", src.Stream)
	}
	if err != nil {
		return fmt.Errorf("creating consumer %s on stream %s: %w", cfg.Durable, src.Stream, err)
	}
	r.mu.Lock()
	r.cons, r.setupErr = cons, ""
	r.mu.Unlock()
	return nil
}

// ensureStream creates a stream capturing subject's first token and all
// below it, unless it exists.
func ensureStream(ctx context.Context, js jetstream.JetStream, name, subject string) error {
	_, err := js.Stream(ctx, name)
	if err == nil {
		return nil
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("looking up stream %s: %w", name, err)
	}
	first := firstToken(subject)
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{
		Name:        name,
		Description: "created by wisp for triggers on " + first + ".>",
		Subjects:    []string{first, first + ".>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      StreamMaxAge,
		Duplicates:  2 * time.Minute,
	})
	if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return fmt.Errorf("creating stream %s for %s.>: %w", name, first, err)
	}
	return nil
}

// StreamMaxAge is how long a stream that wisp creates keeps events.
const StreamMaxAge = 7 * 24 * time.Hour

// handle delivers one message and acknowledges, retries or dead-letters it.
func (r *runner) handle(ctx context.Context, msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		r.log.Error("message without JetStream metadata; terminating it", "subject", msg.Subject(), "error", err)
		_ = msg.Term()
		return
	}
	// The trigger's own output, when its stream captures it, is not input.
	if s := msg.Subject(); s == r.policy.deadLetter || s == r.trigger.Spec.ReplySubject {
		_ = msg.Ack()
		return
	}
	ev, headers := eventFromMessage(ctx, msg, meta)
	if !r.filter.match(ev) {
		_ = msg.Ack()
		return
	}
	attempt := int(meta.NumDelivered)
	stop := keepLease(msg, r.policy.ackWait()/2, r.policy.timeout)
	res := r.send(ctx, ev, headers)
	if res.ok() {
		res.err = r.reply(ctx, &res)
	}
	stop()
	switch {
	case ctx.Err() != nil:
		// Shutting down: another run of the consumer delivers it again.
		_ = msg.Nak()
	case res.ok():
		_ = msg.Ack()
		r.delivered.Inc()
		r.nDelivered.Add(1)
		r.latency.Observe(time.Since(meta.Timestamp).Seconds())
	case res.retry() && attempt < r.policy.attempts():
		r.failed(&res, attempt)
		r.retried.Inc()
		wait := max(r.policy.backoff(attempt), min(retryAfter(res.header), r.policy.max))
		_ = msg.NakWithDelay(wait)
	default:
		r.failed(&res, attempt)
		if err := r.deadLetter(ctx, ev, &res, attempt); err != nil {
			r.log.Error("dead-lettering failed; the event is retried", "id", ev.ID(), "error", err)
			_ = msg.NakWithDelay(r.policy.backoff(attempt))
			return
		}
		_ = msg.Ack()
		r.deadLettered.Inc()
		r.nDeadLettered.Add(1)
	}
}

// failed records a failed attempt.
func (r *runner) failed(res *result, attempt int) {
	msg := fmt.Sprintf("attempt %d of %d: %s", attempt, r.policy.attempts(), res)
	r.mu.Lock()
	r.lastErr, r.lastAt = msg, time.Now()
	r.mu.Unlock()
	r.log.Debug("delivery failed", "sink", r.sink, "error", msg)
}

// send makes one delivery attempt: the event in binary mode, bounded by
// the per-attempt timeout.
func (r *runner) send(ctx context.Context, ev *event.Event, headers http.Header) result {
	ctx, cancel := context.WithTimeout(ctx, r.policy.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.sink, nil)
	if err != nil {
		return result{err: fmt.Errorf("sink %s: %w", r.sink, err)}
	}
	for k, vs := range headers {
		req.Header[k] = vs
	}
	if err := cehttp.WriteRequest(ctx, binding.ToMessage(ev), req); err != nil {
		return result{err: fmt.Errorf("encoding event %s: %w", ev.ID(), err)}
	}
	return call(r.m.client, req, r.trigger.Spec.ReplySubject != "")
}

// reply publishes the event a sink answered with, if any, to the reply
// subject.
func (r *runner) reply(ctx context.Context, res *result) error {
	subject := r.trigger.Spec.ReplySubject
	if subject == "" || !isCloudEvent(res.header) {
		return nil
	}
	ev, err := binding.ToEvent(ctx, cehttp.NewMessage(res.header, io.NopCloser(bytes.NewReader(res.body))))
	if err != nil {
		r.log.Warn("the sink's answer is not a valid CloudEvent; no reply published", "error", err)
		return nil
	}
	msg, err := natsMessage(ctx, subject, ev)
	if err != nil {
		return err
	}
	if _, err := r.m.opts.JetStream.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("publishing the reply to %s: %w", subject, err)
	}
	return nil
}

// deadLetter publishes ev to the dead-letter subject with the error as
// extensions. Without a dead-letter subject the event is only logged.
func (r *runner) deadLetter(ctx context.Context, ev *event.Event, res *result, attempts int) error {
	subject := r.policy.deadLetter
	if subject == "" {
		r.log.Warn("event failed for good and the trigger has no dead-letter subject: dropped",
			"id", ev.ID(), "type", ev.Type(), "source", ev.Source(), "attempts", attempts, "error", res.String())
		return nil
	}
	dl := ev.Clone()
	dl.SetExtension(ExtErrorCode, res.code)
	if res.err != nil {
		dl.SetExtension(ExtErrorData, res.err.Error())
	} else {
		dl.SetExtension(ExtErrorData, excerpt(res.body))
	}
	dl.SetExtension(ExtErrorDest, r.sink)
	dl.SetExtension(ExtAttempts, attempts)
	dl.SetExtension(ExtTrigger, r.trigger.Namespace+"/"+r.trigger.Name)
	msg, err := natsMessage(ctx, subject, &dl)
	if err != nil {
		return err
	}
	// The dead letter must not be lost: try a few times before giving the
	// event back to JetStream.
	for i := range 3 {
		if _, err = r.m.opts.JetStream.PublishMsg(ctx, msg); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(i+1) * 100 * time.Millisecond):
		}
	}
	return fmt.Errorf("publishing to the dead-letter subject %s: %w", subject, err)
}
