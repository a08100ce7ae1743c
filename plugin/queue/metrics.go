package queue

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the queue's Prometheus collectors. A nil *Metrics records
// nothing.
type Metrics struct {
	Deliveries    *prometheus.CounterVec
	RunsFinished  *prometheus.CounterVec
	InvalidEvents prometheus.Counter
	UnknownEvents prometheus.Counter
	IngestLag     prometheus.Histogram
}

// NewMetrics creates the collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "octavo_deliveries_total",
			Help: "Webhook deliveries by result: queued, canceled, ignored, duplicate, rejected.",
		}, []string{"result"}),
		RunsFinished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "octavo_runs_finished_total",
			Help: "Runs that reached a final state, by state and failure kind.",
		}, []string{"state", "failure_kind"}),
		InvalidEvents: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "octavo_ingest_invalid_events_total",
			Help: "Runner output lines that were not a valid event and were skipped.",
		}),
		UnknownEvents: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "octavo_ingest_unknown_events_total",
			Help: "Well-formed events of a type this octavo does not know, skipped.",
		}),
		IngestLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "octavo_ingest_lag_seconds",
			Help:    "Time from the runner writing an event to its commit in the database.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
	}
	reg.MustRegister(m.Deliveries, m.RunsFinished, m.InvalidEvents, m.UnknownEvents, m.IngestLag)
	return m
}

func (m *Metrics) delivery(result string) {
	if m != nil {
		m.Deliveries.WithLabelValues(result).Inc()
	}
}

func (m *Metrics) runFinished(state, kind string) {
	if m != nil {
		m.RunsFinished.WithLabelValues(state, kind).Inc()
	}
}
