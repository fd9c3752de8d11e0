package proxywasm

import (
	"math"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// metricSet holds the metrics plugins define. A metric is named by the
// plugin (Envoy's stat name, e.g. "my_filter.requests") and exported to
// Prometheus as "proxywasm_" + the name with every character Prometheus
// refuses replaced by "_", labelled with the plugin's name. Every VM of a
// plugin that defines the same name gets the same metric.
type metricSet struct {
	reg prometheus.Registerer

	mu      sync.Mutex
	vecs    map[string]*metricVec // by exported name
	ids     map[[2]string]uint32  // {plugin, name} -> id
	metrics []*metric             // by id-1
}

type metricVec struct {
	kind      uint32
	counter   *prometheus.CounterVec
	gauge     *prometheus.GaugeVec
	histogram *prometheus.HistogramVec
}

// metric is one plugin's metric. value backs proxy_get_metric (a
// Prometheus collector cannot be read back cheaply).
type metric struct {
	kind      uint32
	value     atomic.Int64
	counter   prometheus.Counter
	gauge     prometheus.Gauge
	histogram prometheus.Observer
}

// histogramBuckets suit the integers guests record (bytes, milliseconds,
// counts): 1, 4, 16, ... 4^15.
var histogramBuckets = prometheus.ExponentialBuckets(1, 4, 16)

func newMetricSet(reg prometheus.Registerer) *metricSet {
	return &metricSet{reg: reg, vecs: map[string]*metricVec{}, ids: map[[2]string]uint32{}}
}

// define returns the id of plugin's metric name, creating it.
func (s *metricSet) define(plugin string, kind uint32, name string) (uint32, status) {
	if kind > metricHistogram || name == "" {
		return 0, statusBadArgument
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, ok := s.ids[[2]string{plugin, name}]; ok {
		if s.metrics[id-1].kind != kind {
			return 0, statusBadArgument
		}
		return id, statusOK
	}
	exported := "proxywasm_" + promName(name)
	vec, ok := s.vecs[exported]
	if !ok {
		vec = &metricVec{kind: kind}
		help := "proxy-wasm metric " + name + "."
		var c prometheus.Collector
		switch kind {
		case metricCounter:
			vec.counter = prometheus.NewCounterVec(prometheus.CounterOpts{Name: exported, Help: help}, []string{"plugin"})
			c = vec.counter
		case metricGauge:
			vec.gauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: exported, Help: help}, []string{"plugin"})
			c = vec.gauge
		default:
			vec.histogram = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: exported, Help: help, Buckets: histogramBuckets}, []string{"plugin"})
			c = vec.histogram
		}
		if s.reg != nil {
			if err := s.reg.Register(c); err != nil {
				return 0, statusBadArgument // a name the node already uses
			}
		}
		s.vecs[exported] = vec
	} else if vec.kind != kind {
		return 0, statusBadArgument
	}
	m := &metric{kind: kind}
	switch kind {
	case metricCounter:
		m.counter = vec.counter.WithLabelValues(plugin)
	case metricGauge:
		m.gauge = vec.gauge.WithLabelValues(plugin)
	default:
		m.histogram = vec.histogram.WithLabelValues(plugin)
	}
	s.metrics = append(s.metrics, m)
	id := uint32(len(s.metrics))
	s.ids[[2]string{plugin, name}] = id
	return id, statusOK
}

func (s *metricSet) get(id uint32) *metric {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id == 0 || int(id) > len(s.metrics) {
		return nil
	}
	return s.metrics[id-1]
}

// increment adds offset to a counter (which may not go down) or a gauge.
func (m *metric) increment(offset int64) status {
	switch m.kind {
	case metricCounter:
		if offset < 0 {
			return statusBadArgument
		}
		m.value.Add(offset)
		m.counter.Add(float64(offset))
	case metricGauge:
		m.gauge.Set(float64(m.value.Add(offset)))
	default:
		return statusBadArgument
	}
	return statusOK
}

// record sets a gauge or a counter, or observes a histogram value.
func (m *metric) record(value uint64) status {
	v := int64(min(value, math.MaxInt64))
	switch m.kind {
	case metricCounter:
		if old := m.value.Swap(v); v > old {
			m.counter.Add(float64(v - old))
		}
	case metricGauge:
		m.value.Store(v)
		m.gauge.Set(float64(v))
	default:
		m.value.Store(v)
		m.histogram.Observe(float64(value))
	}
	return statusOK
}

// promName replaces the characters a Prometheus metric name may not hold.
func promName(name string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' || r == ':' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, name)
}
