// Package metrics holds a process's Prometheus registry and the RPC metrics
// shared by every service. There is no global registry: main creates one and
// passes it to whatever records metrics.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Registry is a process's metrics registry with the standard collectors.
type Registry struct {
	*prometheus.Registry

	// RPCServerHandled counts finished server RPCs by method and code.
	RPCServerHandled *prometheus.CounterVec
	// RPCServerSeconds observes server RPC latency by method.
	RPCServerSeconds *prometheus.HistogramVec
	// RPCClientHandled counts finished client RPCs by method and code.
	RPCClientHandled *prometheus.CounterVec
	// RPCClientSeconds observes client RPC latency by method.
	RPCClientSeconds *prometheus.HistogramVec
}

// LatencyBuckets fits an SLI of tens of milliseconds.
var LatencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

// New returns a registry with Go and process collectors and the RPC metrics.
func New() *Registry {
	r := &Registry{Registry: prometheus.NewRegistry()}
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	r.RPCServerHandled = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "grpc_server_handled_total", Help: "Server RPCs finished, by method and status code.",
	}, []string{"method", "code"})
	r.RPCServerSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "grpc_server_handling_seconds", Help: "Server RPC latency.", Buckets: LatencyBuckets,
	}, []string{"method"})
	r.RPCClientHandled = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "grpc_client_handled_total", Help: "Client RPCs finished, by method and status code.",
	}, []string{"method", "code"})
	r.RPCClientSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "grpc_client_handling_seconds", Help: "Client RPC latency.", Buckets: LatencyBuckets,
	}, []string{"method"})
	r.MustRegister(r.RPCServerHandled, r.RPCServerSeconds, r.RPCClientHandled, r.RPCClientSeconds)
	return r
}

// Handler serves the registry in the Prometheus text format.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.Registry, promhttp.HandlerOpts{Registry: r.Registry})
}
