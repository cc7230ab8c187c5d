package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/merchshop/merchshop/services/gateway/internal/app"
)

// The refresh token lives in an HttpOnly cookie scoped to the auth routes.
const (
	refreshCookie = "refresh_token"
	cookiePath    = "/api/auth"
)

// forwardSession turns the session header metadata Shop set into the refresh
// cookie of a successful answer.
func (h *Handler) forwardSession(ctx context.Context, w http.ResponseWriter, _ proto.Message) error {
	if md, ok := runtime.ServerMetadataFromContext(ctx); ok {
		h.applySession(w, md.HeaderMD)
	}
	return nil
}

// applySession sets (or, for an empty token, expires) the refresh cookie
// from the session header metadata, if Shop set one.
func (h *Handler) applySession(w http.ResponseWriter, md metadata.MD) {
	toks := md.Get(app.MDRefreshToken)
	if len(toks) == 0 {
		return
	}
	c := &http.Cookie{
		Name:     refreshCookie,
		Path:     cookiePath,
		HttpOnly: true,
		Secure:   h.cfg.SecureCookies,
		SameSite: http.SameSiteStrictMode,
	}
	tok := toks[len(toks)-1]
	var exp int64
	if v := md.Get(app.MDRefreshExpiresAt); len(v) > 0 {
		exp, _ = strconv.ParseInt(v[len(v)-1], 10, 64)
	}
	maxAge := exp - time.Now().Unix()
	switch {
	case tok == "" || (exp != 0 && maxAge <= 0):
		c.MaxAge = -1 // sent as Max-Age=0: delete it now
	case exp == 0:
		c.Value = tok // no expiry known: a browser-session cookie
	default:
		c.Value = tok
		c.MaxAge = int(maxAge)
		c.Expires = time.Unix(exp, 0).UTC()
	}
	http.SetCookie(w, c)
}
