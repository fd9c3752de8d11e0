package triggers

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the Prometheus metrics of triggers and asynchronous calls.
type metrics struct {
	delivered    *prometheus.CounterVec
	retried      *prometheus.CounterVec
	deadLettered *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	async        *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	labels := []string{"namespace", "trigger"}
	m := &metrics{
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wisp_trigger_events_delivered_total",
			Help: "Events a trigger's sink accepted (2xx).",
		}, labels),
		retried: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wisp_trigger_events_retried_total",
			Help: "Failed delivery attempts that were scheduled for a retry.",
		}, labels),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wisp_trigger_events_dead_lettered_total",
			Help: "Events that failed for good: sent to the dead-letter subject, or dropped when the trigger has none.",
		}, labels),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wisp_trigger_delivery_latency_seconds",
			Help:    "Time from an event's publication to JetStream to its sink accepting it, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 20),
		}, labels),
		async: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wisp_async_calls_total",
			Help: "Attempts of asynchronous calls, by outcome: succeeded, retried or failed.",
		}, []string{"namespace", "function", "outcome"}),
	}
	for _, c := range []prometheus.Collector{m.delivered, m.retried, m.deadLettered, m.latency, m.async} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering trigger metrics: %w", err)
		}
	}
	return m, nil
}

// forget drops the series of a deleted trigger.
func (m *metrics) forget(namespace, name string) {
	m.delivered.DeleteLabelValues(namespace, name)
	m.retried.DeleteLabelValues(namespace, name)
	m.deadLettered.DeleteLabelValues(namespace, name)
	m.latency.DeleteLabelValues(namespace, name)
}
