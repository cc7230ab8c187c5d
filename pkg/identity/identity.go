// Package identity carries the authenticated caller, as the gateway's token
// check found it, through the request's context to the use cases. It does
// not cross to the backends: they learn whom a call is for from its request
// fields (user_id), so no name travels in gRPC metadata.
package identity

import "context"

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

// FromContext returns the caller stored by WithCaller; false when there is
// none or it has no user id.
func FromContext(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(ctxKey{}).(Caller)
	return c, ok && c.UserID != ""
}
