// Command auth runs the auth service: login (registering on first login),
// sessions with rotating refresh tokens, and the keys of the access tokens.
package main

import (
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"time"

	authv1 "github.com/merchshop/merchshop/gen/auth/v1"
	coinsv1 "github.com/merchshop/merchshop/gen/coins/v1"
	userv1 "github.com/merchshop/merchshop/gen/user/v1"
	"github.com/merchshop/merchshop/pkg/app"
	"github.com/merchshop/merchshop/pkg/service"
	"github.com/merchshop/merchshop/services/auth/internal/adapters/accesstoken"
	"github.com/merchshop/merchshop/services/auth/internal/adapters/backends"
	"github.com/merchshop/merchshop/services/auth/internal/adapters/postgres"
	authapp "github.com/merchshop/merchshop/services/auth/internal/app"
	"github.com/merchshop/merchshop/services/auth/internal/keys"
	grpctransport "github.com/merchshop/merchshop/services/auth/internal/transport/grpc"
	"github.com/merchshop/merchshop/services/auth/migrations"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "auth:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := app.SignalContext()
	defer stop()

	rt := service.Init("auth", "127.0.0.1:50051", "127.0.0.1:8081")
	issuer := rt.Env.String("AUTH_ISSUER", "merch-shop-auth")
	audience := rt.Env.String("AUTH_AUDIENCE", "merch-shop")
	accessTTL := rt.Env.Duration("AUTH_ACCESS_TTL", time.Hour)
	refreshTTL := rt.Env.Duration("AUTH_REFRESH_TTL", 720*time.Hour)
	signingFile := rt.Env.String("AUTH_SIGNING_KEY_FILE", "")
	verifyFiles := rt.Env.List("AUTH_VERIFY_KEY_FILES", nil)
	devKeyDir := rt.Env.String("AUTH_DEV_KEY_DIR",
		filepath.Join(rt.Env.String("MERCH_STATE_DIR", ".state"), "secrets"))
	purgeEvery := rt.Env.Duration("AUTH_SESSION_PURGE_INTERVAL", 10*time.Minute)
	if err := rt.ConfigErr(); err != nil {
		return err
	}
	if accessTTL <= 0 || refreshTTL <= 0 || purgeEvery <= 0 {
		return fmt.Errorf("AUTH_ACCESS_TTL, AUTH_REFRESH_TTL and AUTH_SESSION_PURGE_INTERVAL must be positive")
	}

	signing, err := signingKey(rt, signingFile, devKeyDir)
	if err != nil {
		return err
	}
	var verifyOnly []ed25519.PublicKey
	for _, f := range verifyFiles {
		k, err := keys.LoadPublic(f)
		if err != nil {
			return err
		}
		verifyOnly = append(verifyOnly, k)
	}
	tokens, err := accesstoken.NewIssuer(signing, verifyOnly, accesstoken.Config{Issuer: issuer, Audience: audience, TTL: accessTTL})
	if err != nil {
		return err
	}
	rt.Log.Info("access token keys", "kid", tokens.KID(), "verify_only", len(tokens.PublicKeys())-1)

	pool, err := rt.Postgres(ctx, "postgres://merch@127.0.0.1:5432/auth?sslmode=disable", 20, migrations.FS, ".")
	if err != nil {
		return err
	}
	defer pool.Close()

	userConn, err := rt.Dial("user", "USER_TARGET", "127.0.0.1:50052")
	if err != nil {
		return err
	}
	coinsConn, err := rt.Dial("coins", "COINS_TARGET", "127.0.0.1:50053")
	if err != nil {
		return err
	}

	sessions := postgres.New(pool)
	svc := authapp.New(
		backends.NewUsers(userv1.NewUserServiceClient(userConn)),
		backends.NewAccounts(coinsv1.NewCoinsServiceClient(coinsConn)),
		sessions, tokens, rt.Log, authapp.Config{RefreshTTL: refreshTTL},
	)
	authv1.RegisterAuthServiceServer(rt.GRPC.Server, grpctransport.New(svc, rt.Log))

	// Expired sessions are kept a day before they are purged.
	return rt.Run(ctx, sessions.Janitor(rt.Log, purgeEvery, 24*time.Hour))
}

// signingKey loads AUTH_SIGNING_KEY_FILE, or in development (unset) a key
// generated once under devKeyDir.
func signingKey(rt *service.Runtime, file, devKeyDir string) (ed25519.PrivateKey, error) {
	if file != "" {
		return keys.LoadPrivate(file)
	}
	k, path, created, err := keys.LoadOrCreateDev(devKeyDir)
	if err != nil {
		return nil, err
	}
	rt.Log.Warn("AUTH_SIGNING_KEY_FILE is not set: using a development signing key; set it in production",
		"path", path, "generated", created)
	return k, nil
}
