package triggers

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wisp-faas/wisp/runtime"
)

// MaxEventBytes bounds an event or asynchronous call taken in over HTTP:
// NATS's default largest message.
const MaxEventBytes = 1 << 20

// serveEvents publishes the CloudEvent of a POST /events/<subject>, in
// binary or structured mode, to JetStream on <subject>. The event's
// source and id name the message for JetStream's duplicate window, so a
// client may safely send an event again. 202 once JetStream stored it.
func (m *Manager) serveEvents(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		runtime.WriteError(w, http.StatusMethodNotAllowed, "POST a CloudEvent to /events/<subject>")
		return
	}
	subject := strings.TrimPrefix(r.URL.Path, "/events/")
	if err := checkSubject(subject); err != nil {
		runtime.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !isCloudEvent(r.Header) {
		runtime.WriteError(w, http.StatusBadRequest,
			"not a CloudEvent: send binary mode (ce-specversion, ce-id, ce-type, ce-source headers) or structured mode (Content-Type: application/cloudevents+json)")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxEventBytes)
	ev, err := binding.ToEvent(r.Context(), cehttp.NewMessageFromHttpRequest(r))
	if err == nil {
		err = ev.Validate()
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			runtime.WriteError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the event is larger than %d bytes", MaxEventBytes))
			return
		}
		runtime.WriteError(w, http.StatusBadRequest, "invalid CloudEvent: "+strings.ReplaceAll(err.Error(), "\n", "; "))
		return
	}
	msg, err := natsMessage(r.Context(), subject, ev)
	if err != nil {
		runtime.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	msg.Header.Set(jetstream.MsgIDHeader, ev.Source()+" "+ev.ID())
	if _, err := m.opts.JetStream.PublishMsg(r.Context(), msg); err != nil {
		if errors.Is(err, jetstream.ErrNoStreamResponse) {
			runtime.WriteError(w, http.StatusNotFound, fmt.Sprintf(
				"no JetStream stream stores subject %q: create a trigger on it (it creates the stream of %q) or a stream", subject, firstToken(subject)+".>"))
			return
		}
		m.log.Warn("publishing an event", "subject", subject, "error", err)
		runtime.WriteError(w, http.StatusServiceUnavailable, "publishing to JetStream: "+err.Error())
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// checkSubject accepts a NATS subject to publish to: tokens separated by
// dots, no wildcards, no whitespace.
func checkSubject(s string) error {
	for tok := range strings.SplitSeq(s, ".") {
		if tok == "" || strings.ContainsAny(tok, "*> \t\r\n") {
			return fmt.Errorf("%q is not a subject to publish to: want tokens separated by '.', without wildcards or spaces", s)
		}
	}
	return nil
}

func firstToken(subject string) string {
	first, _, _ := strings.Cut(subject, ".")
	return first
}
