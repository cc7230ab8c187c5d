// Package grpcclient makes the one long-lived connection a service keeps to
// each backend, with a default deadline on every call and client metrics.
package grpcclient

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/merchshop/merchshop/pkg/metrics"
)

// serviceConfig spreads calls over every address a name resolves to (a
// headless Kubernetes Service) and retries calls that never reached a server.
const serviceConfig = `{
  "loadBalancingConfig": [{"round_robin": {}}],
  "methodConfig": [{
    "name": [{}],
    "waitForReady": false,
    "retryPolicy": {
      "maxAttempts": 3,
      "initialBackoff": "0.02s",
      "maxBackoff": "0.2s",
      "backoffMultiplier": 2,
      "retryableStatusCodes": ["UNAVAILABLE"]
    }
  }]
}`

// Dial returns a connection to target (host:port or a gRPC name such as
// dns:///coins:9090). Every call made through it without a deadline of its
// own gets timeout. Calls answered UNAVAILABLE are retried (up to 3 attempts):
// mostly calls that never reached a server, but also a server's own
// UNAVAILABLE (such as merch's "purchase is being processed"); every mutating
// RPC in this system is idempotent by key, so a retry never applies an effect
// twice. Reconnection backoff is capped at 1 s so that a restarted backend is
// used again quickly.
func Dial(target string, timeout time.Duration, reg *metrics.Registry) (*grpc.ClientConn, error) {
	conn, err := grpc.NewClient(target,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(serviceConfig),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: 2 * time.Second,
		}),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.WithChainUnaryInterceptor(deadline(timeout), observe(reg)),
	)
	if err != nil {
		return nil, fmt.Errorf("grpc client %s: %w", target, err)
	}
	conn.Connect()
	return conn, nil
}

func deadline(timeout time.Duration) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}

func observe(reg *metrics.Registry) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if reg == nil {
			return invoker(ctx, method, req, reply, cc, opts...)
		}
		start := time.Now()
		err := invoker(ctx, method, req, reply, cc, opts...)
		reg.RPCClientHandled.WithLabelValues(method, status.Code(err).String()).Inc()
		reg.RPCClientSeconds.WithLabelValues(method).Observe(time.Since(start).Seconds())
		return err
	}
}

// HealthCheck returns a check that asks the standard gRPC health service
// behind conn whether it is SERVING.
func HealthCheck(target string, conn *grpc.ClientConn) func(ctx context.Context) error {
	client := healthpb.NewHealthClient(conn)
	return func(ctx context.Context) error {
		resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			return fmt.Errorf("health %s: %w", target, err)
		}
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("%s is %s", target, resp.GetStatus())
		}
		return nil
	}
}
