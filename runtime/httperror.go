package runtime

import (
	"encoding/json"
	"net/http"
)

// WriteError answers a function request that wisp itself fails, with
// status and the data path's one error shape, a JSON body
// {"error": msg}, so that clients can tell wisp's answers from the
// function's whatever part of the path failed.
func WriteError(w http.ResponseWriter, status int, msg string) {
	body, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// FailureHeader, on an answer wisp wrote itself, names the kind of
// failure, so that the gateway's retry policy (and a curious client) can
// tell a process that refused the connection from one that answered 503.
const FailureHeader = "X-Wisp-Failure"

// The kinds of failure FailureHeader names.
const (
	// FailureConnect: the instance did not accept the connection.
	FailureConnect = "connect-failure"
	// FailureReset: the connection broke before the response began.
	FailureReset = "reset"
	// FailureOverloaded: the gateway had no capacity for the request (a
	// full queue, an open circuit breaker, no ready instance).
	FailureOverloaded = "overloaded"
	// FailureTimeout: a deadline passed before the response began.
	FailureTimeout = "timeout"
)

// WriteFailure is WriteError for a failure of one of the kinds above.
func WriteFailure(w http.ResponseWriter, status int, kind, msg string) {
	w.Header().Set(FailureHeader, kind)
	WriteError(w, status, msg)
}
