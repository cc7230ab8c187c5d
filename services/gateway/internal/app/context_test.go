package app

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/metadata"
)

func TestFormatTime(t *testing.T) {
	cases := map[int64]string{
		0:                 "1970-01-01T00:00:00.000Z",
		1_700_000_000_123: "2023-11-14T22:13:20.123Z",
		1_700_000_000_000: "2023-11-14T22:13:20.000Z",
	}
	for ms, want := range cases {
		if got := FormatTime(ms); got != want {
			t.Errorf("FormatTime(%d) = %s, want %s", ms, got, want)
		}
	}
}

func TestIdempotencyKey(t *testing.T) {
	ctx := context.Background()
	a, b := IdempotencyKey(ctx), IdempotencyKey(ctx)
	if a == b || !strings.HasPrefix(a, "gw:") {
		t.Fatalf("fallback keys %q %q: want fresh random keys", a, b)
	}
	if k := IdempotencyKey(WithIdempotencyKey(ctx, "k1")); k != "k1" {
		t.Fatalf("set key read back as %q", k)
	}
}

func TestRequestFacts(t *testing.T) {
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs(MDRefreshToken, "rt", MDUserAgent, "ua"))
	if RefreshToken(ctx) != "rt" || UserAgent(ctx) != "ua" {
		t.Fatal("request facts not read from the incoming metadata")
	}
	if RefreshToken(context.Background()) != "" {
		t.Fatal("refresh token without metadata")
	}
}
