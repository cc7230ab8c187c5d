// Package identity carries the authenticated caller from the gateway to the
// backends as gRPC metadata. The user id is a UUID (ASCII); the username
// may be any Unicode name, so it travels as binary metadata (a "-bin" key,
// base64 on the wire): an ASCII-only header value would make gRPC refuse
// the call for a name like "Алексей".
package identity

import (
	"context"

	"google.golang.org/grpc/metadata"
)

const (
	userIDKey   = "x-user-id"
	usernameKey = "x-username-bin"
)

// Caller is the authenticated user a request is made for.
type Caller struct {
	UserID   string
	Username string
}

type ctxKey struct{}

// WithCaller stores c in ctx (used by the gateway after checking the JWT).
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, ctxKey{}, c)
}

// FromContext returns the caller stored by WithCaller.
func FromContext(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(ctxKey{}).(Caller)
	return c, ok && c.UserID != ""
}

// Outgoing adds c to the outgoing gRPC metadata of ctx.
func Outgoing(ctx context.Context, c Caller) context.Context {
	return metadata.AppendToOutgoingContext(ctx, userIDKey, c.UserID, usernameKey, c.Username)
}

// Incoming reads the caller from incoming gRPC metadata.
func Incoming(ctx context.Context) (Caller, bool) {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return Caller{}, false
	}
	ids, names := md.Get(userIDKey), md.Get(usernameKey)
	if len(ids) != 1 || ids[0] == "" {
		return Caller{}, false
	}
	c := Caller{UserID: ids[0]}
	if len(names) == 1 {
		c.Username = names[0]
	}
	return c, true
}
