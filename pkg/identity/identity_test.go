package identity

import (
	"context"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthv1 "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/test/bufconn"
)

// TestCallerCrossesARealGRPCCall sends callers with names in many scripts
// through a gRPC client and server: every call succeeds and the server reads
// the caller back unchanged.
func TestCallerCrossesARealGRPCCall(t *testing.T) {
	lis := bufconn.Listen(1 << 20)
	seen := make(chan Caller, 1)
	srv := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		c, _ := Incoming(ctx)
		seen <- c
		return h(ctx, req)
	}))
	healthv1.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	client := healthv1.NewHealthClient(conn)

	for _, name := range []string{"alice", "Алексей", "山田やまだ", "محمد", "e\u0301", "party\U0001f389", "a\nb"} {
		want := Caller{UserID: "0b7e3f4c-8a51-4a5c-9d0e-1f2a3b4c5d6e", Username: name}
		ctx, cancel := context.WithTimeout(context.Background(), 5e9)
		_, err := client.Check(Outgoing(ctx, want), &healthv1.HealthCheckRequest{})
		cancel()
		if err != nil {
			t.Fatalf("call as %q: %v", name, err)
		}
		if got := <-seen; got != want {
			t.Errorf("server read %+v, want %+v", got, want)
		}
	}
}

func TestIncomingWithoutMetadata(t *testing.T) {
	if c, ok := Incoming(context.Background()); ok {
		t.Errorf("Incoming without metadata = %+v, true", c)
	}
}
