package triggers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TypeNATSMessage is the CloudEvents type of a JetStream message that was
// not a CloudEvent, wrapped to be delivered as one.
const TypeNATSMessage = "wisp.nats.message"

// Extensions wisp adds to a dead-lettered event, saying why it failed.
const (
	// ExtErrorCode is the sink's last HTTP status; 0 when no answer came.
	ExtErrorCode = "wisperrorcode"
	// ExtErrorData is the start of the sink's answer, or the error.
	ExtErrorData = "wisperrordata"
	// ExtErrorDest is the sink's URL.
	ExtErrorDest = "wisperrordest"
	// ExtAttempts is how many times delivery was attempted.
	ExtAttempts = "wispattempts"
	// ExtTrigger is the trigger, as namespace/name.
	ExtTrigger = "wisptrigger"
)

// isCloudEvent reports whether headers carry a CloudEvent in binary or
// structured mode.
func isCloudEvent(h http.Header) bool {
	return h.Get("Ce-Specversion") != "" || strings.HasPrefix(h.Get("Content-Type"), "application/cloudevents")
}

// eventFromMessage turns a JetStream message into the event to deliver:
// the CloudEvent it carries in binary mode (ce- headers) or structured
// mode, or else the message wrapped as a TypeNATSMessage event whose id
// is "<stream>-<sequence>" (the same on every redelivery), whose subject
// is the NATS subject and whose data is the payload. headers are the
// message's other headers, which travel with the event as HTTP headers.
func eventFromMessage(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata) (ev *event.Event, headers http.Header) {
	h := make(http.Header, len(msg.Headers()))
	for k, vs := range msg.Headers() {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	if isCloudEvent(h) {
		m := cehttp.NewMessage(h, io.NopCloser(bytes.NewReader(msg.Data())))
		if ev, err := binding.ToEvent(ctx, m); err == nil && ev.Validate() == nil {
			return ev, passHeaders(h)
		}
	}
	e := event.New()
	e.SetID(fmt.Sprintf("%s-%d", meta.Stream, meta.Sequence.Stream))
	e.SetType(TypeNATSMessage)
	e.SetSource("/wisp/streams/" + meta.Stream)
	e.SetSubject(msg.Subject())
	e.SetTime(meta.Timestamp)
	ct := h.Get("Content-Type")
	switch {
	case ct != "":
	case json.Valid(msg.Data()):
		ct = "application/json"
	default:
		ct = "application/octet-stream"
	}
	if len(msg.Data()) > 0 {
		_ = e.SetData(ct, msg.Data()) // []byte is stored as it is; no error.
	}
	return &e, passHeaders(h)
}

// passHeaders returns the headers of a message that travel with its event
// to the sink: all but the CloudEvents ones, NATS's own, and those HTTP
// manages.
func passHeaders(h http.Header) http.Header {
	out := make(http.Header)
	for k, vs := range h {
		lk := strings.ToLower(k)
		switch {
		case strings.HasPrefix(lk, "ce-"), strings.HasPrefix(lk, "nats-"):
		case lk == "content-type", lk == "content-length", lk == "host", lk == "connection", lk == "transfer-encoding":
		default:
			out[k] = vs
		}
	}
	return out
}

// natsMessage encodes ev for JetStream in binary mode: attributes as ce-
// headers (encoded as the HTTP binding does), data as the payload.
func natsMessage(ctx context.Context, subject string, ev *event.Event) (*nats.Msg, error) {
	req := &http.Request{Header: make(http.Header)}
	if err := cehttp.WriteRequest(ctx, binding.ToMessage(ev), req); err != nil {
		return nil, fmt.Errorf("encoding event %s: %w", ev.ID(), err)
	}
	msg := nats.NewMsg(subject)
	msg.Header = nats.Header(req.Header)
	if req.Body != nil {
		data, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, fmt.Errorf("encoding event %s: %w", ev.ID(), err)
		}
		msg.Data = data
	}
	return msg, nil
}
