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
