package plugin

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/octavo-ci/octavo/plugin/store"
)

// registerGauges adds the gauges that are read from the database at scrape
// time, so every replica reports the same queue.
func (s *Server) registerGauges() {
	count := func(state store.RunState) func() float64 {
		return func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			var n int64
			if err := s.st.DB.WithContext(ctx).Model(&store.Run{}).Where("state = ?", state).Count(&n).Error; err != nil {
				s.log.Error("count runs for metrics", "state", state, "err", err)
				return -1
			}
			return float64(n)
		}
	}
	s.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "octavo_queue_length", Help: "Runs waiting in the queue (all replicas)."}, count(store.RunQueued)),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "octavo_active_runs", Help: "Runs executing now (all replicas)."}, count(store.RunActive)),
	)
}
