package builtin

import (
	"net/http"
	"strconv"
	"time"

	"github.com/wisp-faas/wisp/activator/filter"
	"github.com/wisp-faas/wisp/api"
)

// fault delays and aborts a share of requests, each drawn on its own.
type fault struct {
	stateless
	name         string
	delayPercent float64
	delay        time.Duration
	abortPercent float64
	abortStatus  int
	percent      func() float64
	sleep        func(*http.Request, time.Duration) bool
}

func newFault(name string, spec *api.FaultFilter, percent func() float64) (*fault, error) {
	f := &fault{name: name, percent: percent, sleep: sleepCtx}
	if d := spec.Delay; d != nil {
		delay, err := time.ParseDuration(d.FixedDelay)
		if err != nil {
			return nil, err
		}
		f.delayPercent, f.delay = d.Percentage, delay
	}
	if a := spec.Abort; a != nil {
		f.abortPercent, f.abortStatus = a.Percentage, int(a.HTTPStatus)
	}
	return f, nil
}

func sleepCtx(r *http.Request, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

func (f *fault) Name() string                         { return f.name }
func (f *fault) Start(*filter.Exchange) filter.Stream { return f }

func (f *fault) Request(x *filter.Exchange) *filter.Response {
	if f.delayPercent > 0 && f.percent() < f.delayPercent {
		if !f.sleep(x.Request, f.delay) {
			return local(http.StatusGatewayTimeout, "the request ended during an injected delay", nil)
		}
	}
	if f.abortPercent > 0 && f.percent() < f.abortPercent {
		return local(f.abortStatus, "fault injected by filter "+f.name+": "+strconv.Itoa(f.abortStatus), http.Header{"X-Wisp-Fault": {"abort"}})
	}
	return nil
}
