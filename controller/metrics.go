package controller

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the scaling metrics of every revision the node runs.
type metrics struct {
	desired   *prometheus.GaugeVec
	ready     *prometheus.GaugeVec
	panic     *prometheus.GaugeVec
	queue     *prometheus.GaugeVec
	coldStart *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	labels := []string{"namespace", "revision"}
	m := &metrics{
		desired: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wisp_revision_desired_instances", Help: "Instances the autoscaler wants for a revision.",
		}, labels),
		ready: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wisp_revision_ready_instances", Help: "Instances of a revision that take requests.",
		}, labels),
		panic: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wisp_revision_panic_mode", Help: "1 while the autoscaler is in panic mode for a revision.",
		}, labels),
		queue: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wisp_revision_queue_depth", Help: "Requests of a revision waiting for an instance with room.",
		}, labels),
		coldStart: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wisp_revision_cold_start_seconds",
			Help:    "How long requests that found no ready instance waited for one; its count is the number of cold-started requests.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, labels),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.desired, m.ready, m.panic, m.queue, m.coldStart} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering scaling metrics: %w", err)
		}
	}
	return m, nil
}

// forget drops the series of a revision that is no longer scaled.
func (m *metrics) forget(namespace, revision string) {
	for _, v := range []*prometheus.GaugeVec{m.desired, m.ready, m.panic, m.queue} {
		v.DeleteLabelValues(namespace, revision)
	}
	m.coldStart.DeleteLabelValues(namespace, revision)
}
