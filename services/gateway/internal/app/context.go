package app

import (
	"context"
	"strconv"

	"github.com/google/uuid"
	"google.golang.org/grpc/metadata"
)

// Metadata keys between the HTTP layer and Shop. Shop is served in-process
// by grpc-gateway, so the HTTP layer passes request facts as incoming
// metadata (through a metadata annotator) and Shop answers session changes as
// response header metadata (grpc.SetHeader), which the HTTP layer turns into
// the refresh cookie. Neither ever reaches a backend.
const (
	// MDRefreshToken is, incoming, the refresh cookie of the request and,
	// in the response header, the refresh token to set ("" clears it).
	MDRefreshToken = "x-merch-refresh-token"
	// MDRefreshExpiresAt is, in the response header, when the refresh token
	// expires (unix seconds).
	MDRefreshExpiresAt = "x-merch-refresh-expires-at"
	// MDUserAgent is, incoming, the client's User-Agent.
	MDUserAgent = "x-merch-user-agent"
)

func incoming(ctx context.Context, key string) string {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return ""
	}
	if v := md.Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

// RefreshToken returns the refresh token the request carried.
func RefreshToken(ctx context.Context) string { return incoming(ctx, MDRefreshToken) }

// UserAgent returns the client's User-Agent.
func UserAgent(ctx context.Context) string { return incoming(ctx, MDUserAgent) }

func sessionHeader(refreshToken string, expiresAt int64) metadata.MD {
	return metadata.Pairs(MDRefreshToken, refreshToken, MDRefreshExpiresAt, strconv.FormatInt(expiresAt, 10))
}

type idemKey struct{}

// WithIdempotencyKey sets the key that money-moving calls of this request
// pass to the backends.
func WithIdempotencyKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, idemKey{}, key)
}

// IdempotencyKey returns the key set by WithIdempotencyKey or, when there is
// none, a new random one: every backend call carries a key, so that retries
// inside the system never apply an effect twice.
func IdempotencyKey(ctx context.Context) string {
	if k, ok := ctx.Value(idemKey{}).(string); ok && k != "" {
		return k
	}
	return "gw:" + uuid.NewString()
}
