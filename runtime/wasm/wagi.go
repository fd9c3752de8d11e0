package wasm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"

	wapi "github.com/tetratelabs/wazero/api"

	"github.com/wisp-faas/wisp/runtime"
)

// serveWAGI runs one request as WAGI does: a fresh instance of the WASI
// command with the request in its environment, arguments and stdin, its
// stdout parsed as a CGI response. See docs/abi.md, "wagi".
func (i *instance) serveWAGI(ctx context.Context, w http.ResponseWriter, r *http.Request, body []byte) {
	out := &limitedBuffer{max: maxResponseBytes}
	cfg := i.moduleConfig(bytes.NewReader(body), out).WithArgs(wagiArgs(r)...)
	for _, kv := range wagiEnv(r, len(body)) {
		cfg = cfg.WithEnv(kv[0], kv[1])
	}

	c := i.startCall(ctx, nil)
	mod, err := i.instantiate(c.ctx, cfg)
	if err != nil {
		i.finish(c)
		i.stderr.Flush()
		runtime.WriteError(w, http.StatusInternalServerError, fmt.Sprintf("revision %s: instantiating the module: %v", i.m.rev.Name, firstLine(err.Error())))
		return
	}
	if i.m.interruptible {
		c.mu.Lock()
		c.interrupt, _ = mod.ExportedGlobal(interruptExport).(wapi.MutableGlobal)
		if c.interrupted.Load() && c.interrupt != nil { // the deadline passed while instantiating
			c.interrupt.Set(1)
		}
		c.mu.Unlock()
	}
	err = mod.ExportedFunction("_start").CallWithStack(c.ctx, nil)
	interrupted := i.finish(c)
	_ = mod.Close(context.Background())
	i.stderr.Flush()

	code, exited := exitCode(err)
	switch {
	case err == nil || (exited && code == 0):
	case interrupted || isContextExit(err):
		i.ended(w, c.ctx, false)
		return
	case exited:
		runtime.WriteError(w, http.StatusInternalServerError, fmt.Sprintf("revision %s: the module exited with code %d", i.m.rev.Name, code))
		return
	default:
		what := firstLine(err.Error())
		reason := i.crashed(what)
		runtime.WriteError(w, http.StatusInternalServerError, fmt.Sprintf("revision %s failed: %s", i.m.rev.Name, what))
		if strings.HasPrefix(reason, CrashLoopPrefix) {
			i.notify(runtime.State{Ready: true, Reason: reason})
		}
		return
	}
	if out.overflow {
		runtime.WriteError(w, http.StatusInternalServerError, fmt.Sprintf("revision %s wrote more than %d bytes to stdout", i.m.rev.Name, maxResponseBytes))
		return
	}
	if err := writeCGI(w, out.Bytes(), r.Method == http.MethodHead); err != nil {
		i.log.Warn("bad CGI response from the module", "error", err)
		runtime.WriteError(w, http.StatusInternalServerError, fmt.Sprintf("revision %s: %v", i.m.rev.Name, err))
	}
}

// wagiArgs returns the arguments WAGI gives a module: the request path,
// then the query string split at '&', undecoded.
func wagiArgs(r *http.Request) []string {
	args := []string{scriptName(r) + r.URL.Path}
	if q := r.URL.RawQuery; q != "" {
		args = append(args, strings.Split(q, "&")...)
	}
	return args
}

// scriptName is the path prefix under which the function is mounted: the
// gateway strips it from the path and passes it in X-Forwarded-Prefix.
func scriptName(r *http.Request) string {
	return strings.TrimSuffix(r.Header.Get("X-Forwarded-Prefix"), "/")
}

// wagiEnv returns WAGI's CGI variables for r, whose body has n bytes.
func wagiEnv(r *http.Request, n int) [][2]string {
	script := scriptName(r)
	host, port := r.Host, ""
	if h, p, err := net.SplitHostPort(r.Host); err == nil {
		host, port = h, p
	}
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[scheme]
	}
	remote := r.RemoteAddr
	if h, _, err := net.SplitHostPort(remote); err == nil {
		remote = h
	}
	full := scheme + "://" + r.Host + script + r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		full += "?" + r.URL.RawQuery
	}
	env := [][2]string{
		{"AUTH_TYPE", ""},
		{"CONTENT_LENGTH", strconv.Itoa(n)},
		{"CONTENT_TYPE", r.Header.Get("Content-Type")},
		{"GATEWAY_INTERFACE", "CGI/1.1"},
		{"PATH_INFO", r.URL.Path},
		{"PATH_TRANSLATED", r.URL.Path},
		{"QUERY_STRING", r.URL.RawQuery},
		{"REMOTE_ADDR", remote},
		{"REMOTE_HOST", remote},
		{"REMOTE_USER", ""},
		{"REQUEST_METHOD", r.Method},
		{"SCRIPT_NAME", script},
		{"SERVER_NAME", host},
		{"SERVER_PORT", port},
		{"SERVER_PROTOCOL", r.Proto},
		{"SERVER_SOFTWARE", "wisp"},
		{"X_FULL_URL", full},
		{"X_MATCHED_ROUTE", script + "/..."},
		{"X_RAW_PATH_INFO", r.URL.EscapedPath()},
		{"HTTP_HOST", r.Host},
	}
	for k, vs := range r.Header {
		name := "HTTP_" + strings.ToUpper(strings.ReplaceAll(k, "-", "_"))
		if name == "HTTP_AUTHORIZATION" || name == "HTTP_CONNECTION" || name == "HTTP_HOST" { // RFC 3875, 4.1.18
			continue
		}
		env = append(env, [2]string{name, strings.Join(vs, ", ")})
	}
	return env
}

// writeCGI sends the CGI response out: header lines up to the first
// empty line, then the body. "Status: 404 Not Found" sets the status;
// "Location" alone makes it 302; at least one of Content-Type, Location
// and Status must be given.
func writeCGI(w http.ResponseWriter, out []byte, head bool) error {
	block, body, ok := cutHeaderBlock(out)
	if !ok {
		return errors.New("the module's output has no empty line ending its headers; a WAGI module prints headers (at least Content-Type), an empty line, then the body")
	}
	h := w.Header()
	status, hasStatus, sufficient := http.StatusOK, false, false
	for line := range strings.SplitSeq(string(block), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || !validHeaderName(name) || !validHeaderValue(value) {
			return fmt.Errorf("the module printed the malformed header line %q", line)
		}
		switch strings.ToLower(name) {
		case "status":
			code, _, _ := strings.Cut(value, " ")
			n, err := strconv.Atoi(code)
			if err != nil || n < 100 || n > 999 {
				return fmt.Errorf("the module printed the bad status %q", value)
			}
			status, hasStatus, sufficient = n, true, true
		case "location":
			h.Set("Location", value)
			if !hasStatus {
				status = http.StatusFound
			}
			sufficient = true
		case "content-type":
			h.Set("Content-Type", value)
			sufficient = true
		case "content-length", "transfer-encoding", "connection":
		default:
			h.Add(name, value)
		}
	}
	if !sufficient {
		return errors.New("the module's response has neither Content-Type nor Location (nor Status); print at least \"Content-Type: text/plain\" and an empty line before the body")
	}
	if !head {
		h.Set("Content-Length", strconv.Itoa(len(body)))
	}
	w.WriteHeader(status)
	if !head {
		_, _ = w.Write(body)
	}
	return nil
}

// cutHeaderBlock splits out at its first empty line ("\n\n" or
// "\r\n\r\n").
func cutHeaderBlock(out []byte) (block, body []byte, ok bool) {
	for i := 0; i < len(out); i++ {
		if out[i] != '\n' {
			continue
		}
		j := i + 1
		if j < len(out) && out[j] == '\r' {
			j++
		}
		if j < len(out) && out[j] == '\n' {
			return out[:i], out[j+1:], true
		}
	}
	return nil, nil, false
}

// limitedBuffer keeps at most max bytes and notes whether more came.
type limitedBuffer struct {
	bytes.Buffer
	max      int
	overflow bool
}

// Write keeps what fits. It never fails, so that a guest printing too much
// ends normally and gets its 500.
func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); len(p) > room {
		b.overflow = true
		b.Buffer.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return b.Buffer.Write(p)
}
