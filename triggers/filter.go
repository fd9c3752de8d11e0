package triggers

import (
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"

	"github.com/wisp-faas/wisp/api"
)

// condition is one attribute test of a filter.
type condition struct {
	attr  string
	value string
	test  func(s, value string) bool
}

// filter is a Trigger's filters, compiled: every condition must hold.
type filter []condition

func exact(s, v string) bool { return s == v }

// newFilter compiles a Trigger's filters.
func newFilter(fs []api.EventFilter) filter {
	var out filter
	for _, f := range fs {
		for _, d := range []struct {
			m    map[string]string
			test func(s, v string) bool
		}{{f.Exact, exact}, {f.Prefix, strings.HasPrefix}, {f.Suffix, strings.HasSuffix}} {
			for k, v := range d.m {
				out = append(out, condition{attr: k, value: v, test: d.test})
			}
		}
	}
	return out
}

// match reports whether ev passes every condition. An attribute or
// extension the event does not have fails its condition.
func (f filter) match(ev *event.Event) bool {
	for _, c := range f {
		v, ok := attribute(ev, c.attr)
		if !ok || !c.test(v, c.value) {
			return false
		}
	}
	return true
}

// attribute returns a context attribute or extension of ev as a string.
func attribute(ev *event.Event, name string) (string, bool) {
	var v string
	switch name {
	case "specversion":
		v = ev.SpecVersion()
	case "id":
		v = ev.ID()
	case "type":
		v = ev.Type()
	case "source":
		v = ev.Source()
	case "subject":
		v = ev.Subject()
	case "datacontenttype":
		v = ev.DataContentType()
	case "dataschema":
		v = ev.DataSchema()
	case "time":
		if ev.Time().IsZero() {
			return "", false
		}
		v = types.FormatTime(ev.Time())
	default:
		x, ok := ev.Extensions()[name]
		if !ok {
			return "", false
		}
		s, err := types.Format(x)
		return s, err == nil
	}
	return v, v != ""
}
