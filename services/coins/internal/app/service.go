// Package app holds the coins use cases: accounts, transfers, charges and
// credits with their money and idempotency rules. Storage is behind
// Repository, declared here and implemented in adapters/postgres.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/merchshop/merchshop/pkg/events"
	"github.com/merchshop/merchshop/pkg/viewcache"
)

// Movement is one money movement for the repository to apply atomically:
// lock the accounts it touches (sorted), check the payer's funds, record
// the transaction, its ledger entries and its event. Amount is in minor
// units. From is uuid.Nil for credits, To is uuid.Nil for purchases.
type Movement struct {
	ID          uuid.UUID
	Kind        string
	Key         string
	RequestHash string
	From        uuid.UUID
	To          uuid.UUID
	Amount      int64
	Reason      string
}

// StoredTransaction is what a recorded idempotency key resolves to: the
// transaction recorded under it or, when the request was refused, the
// refusal (Refusal set, ID uuid.Nil). Either is the key's one and only
// outcome.
type StoredTransaction struct {
	ID          uuid.UUID
	RequestHash string
	// Refusal is the error the request was refused with
	// (ErrInsufficientFunds); nil for a transaction.
	Refusal error
}

// Counterpart is one line of the grouped history, in minor units from the
// repository and in coins from the use cases.
type Counterpart struct {
	Username string
	Amount   int64
}

// History is a user's transfers grouped per counterpart, each list ordered
// by username.
type History struct {
	Received []Counterpart
	Sent     []Counterpart
}

// Overview is a user's balance and history read from one snapshot.
type Overview struct {
	Balance int64
	History
}

// Repository stores accounts and the ledger.
type Repository interface {
	// OpenAccount creates the account with a grant of grantMinor recorded as
	// transaction grantKey, or returns the existing account's balance with
	// created=false. ErrUsernameTaken when another user has the username.
	OpenAccount(ctx context.Context, userID uuid.UUID, username string, grantMinor int64, grantKey, grantHash string) (balanceMinor int64, created bool, err error)
	// FindUserID resolves a username; ErrNotFound when there is none.
	FindUserID(ctx context.Context, username string) (uuid.UUID, error)
	// FindTransaction looks an idempotency key up: its transaction or its
	// recorded refusal; ErrNoTransaction when it is not recorded.
	FindTransaction(ctx context.Context, key string) (StoredTransaction, error)
	// Move applies m. ErrInsufficientFunds: refused, and the refusal is
	// committed under m.Key (FindTransaction returns it from then on, so a
	// refusal is as final as a success). ErrDuplicateKey: m.Key already has
	// an outcome, a transaction or a refusal, recorded by an earlier or
	// concurrent request; nothing was applied. ErrAccountNotFound,
	// ErrUnknownRecipient (not recorded), ErrBusy.
	Move(ctx context.Context, m Movement) error
	// Balance returns the balance in minor units; ErrAccountNotFound.
	Balance(ctx context.Context, userID uuid.UUID) (int64, error)
	// History returns the transfers of userID grouped per counterpart, in
	// minor units, each list ordered by username.
	History(ctx context.Context, userID uuid.UUID) (History, error)
	// Overview returns the balance and the history (as History) in minor
	// units from one snapshot; ErrAccountNotFound.
	Overview(ctx context.Context, userID uuid.UUID) (Overview, error)
}

// Notifier is told after a commit that added outbox events (the relay).
type Notifier interface{ Notify() }

// Views is the info view cache's invalidation (pkg/viewcache.Writer): every
// movement runs between Begin and End on the users whose balance or history
// it changes, and commits no later than the change's CommitBy. A Begin
// error means the cache could not be told, and nothing is moved.
type Views interface {
	Begin(ctx context.Context, userIDs ...string) (viewcache.Change, error)
	End(ctx context.Context, c viewcache.Change) error
}

// endTimeout bounds telling the view cache a movement is over.
const endTimeout = time.Second

// Service implements the use cases.
type Service struct {
	repo   Repository
	notify Notifier
	views  Views
	log    *slog.Logger
}

// New returns the use cases over repo; notify may be nil. Without
// WithViews no view cache is told of movements.
func New(repo Repository, notify Notifier) *Service {
	return &Service{repo: repo, notify: notify, views: noViews{}, log: slog.New(slog.DiscardHandler)}
}

// WithViews has every movement tell views (see Views); log gets the
// failures to end a change.
func (s *Service) WithViews(views Views, log *slog.Logger) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s.views, s.log = views, log
	return s
}

type noViews struct{}

func (noViews) Begin(context.Context, ...string) (viewcache.Change, error) {
	return viewcache.Change{}, nil
}
func (noViews) End(context.Context, viewcache.Change) error { return nil }

// OpenResult is the outcome of OpenAccount; Balance is in coins.
type OpenResult struct {
	Balance int64
	Created bool
}

// TxResult is the outcome of a money movement. Replayed is true when the
// idempotency key had been seen and this is the first outcome again.
type TxResult struct {
	TransactionID string
	Replayed      bool
}

// TransferCmd asks to move Amount coins from FromUserID to ToUsername.
type TransferCmd struct {
	FromUserID     string
	ToUsername     string
	Amount         int64
	IdempotencyKey string
}

// ChargeCmd asks to take Amount coins from UserID (a purchase) or, in
// Credit, to give them.
type ChargeCmd struct {
	UserID         string
	Amount         int64
	IdempotencyKey string
	Reason         string
}

// OpenAccount opens the account of a new user with the welcome grant,
// idempotently: a second call returns created=false and the balance.
func (s *Service) OpenAccount(ctx context.Context, userID, username string) (OpenResult, error) {
	id, err := ParseUserID(userID)
	if err != nil {
		return OpenResult{}, err
	}
	if !ValidUsername(username) {
		return OpenResult{}, ErrInvalidUsername
	}
	grant := ToMinor(WelcomeGrant)
	key := "open:" + id.String()
	balance, created, err := s.repo.OpenAccount(ctx, id, username, grant, key,
		requestHash(events.KindGrant, "", id.String(), grant))
	if err != nil {
		return OpenResult{}, fmt.Errorf("open account: %w", err)
	}
	if created {
		s.notified()
	}
	return OpenResult{Balance: ToCoins(balance), Created: created}, nil
}

// Transfer moves coins between two users, idempotently per sender and key:
// a repeated key returns the first outcome, a refusal for insufficient
// funds included.
func (s *Service) Transfer(ctx context.Context, cmd TransferCmd) (TxResult, error) {
	if err := ValidateAmount(cmd.Amount); err != nil {
		return TxResult{}, err
	}
	from, err := ParseUserID(cmd.FromUserID)
	if err != nil {
		return TxResult{}, err
	}
	if cmd.ToUsername == "" {
		return TxResult{}, ErrRecipientRequired
	}
	if err := ValidateKey(cmd.IdempotencyKey); err != nil {
		return TxResult{}, err
	}
	amount := ToMinor(cmd.Amount)
	m := Movement{
		Kind:        events.KindTransfer,
		Key:         "transfer:" + from.String() + ":" + cmd.IdempotencyKey,
		RequestHash: requestHash(events.KindTransfer, from.String(), cmd.ToUsername, amount),
		From:        from,
		Amount:      amount,
	}
	if res, ok, err := s.replay(ctx, m); ok || err != nil {
		return res, err
	}
	if !ValidUsername(cmd.ToUsername) {
		return TxResult{}, ErrUnknownRecipient
	}
	to, err := s.repo.FindUserID(ctx, cmd.ToUsername)
	if errors.Is(err, ErrNotFound) {
		return TxResult{}, ErrUnknownRecipient
	}
	if err != nil {
		return TxResult{}, fmt.Errorf("find recipient: %w", err)
	}
	if to == from {
		return TxResult{}, ErrSelfTransfer
	}
	m.To = to
	return s.move(ctx, m)
}

// Charge takes coins from a user for a purchase, idempotently per key
// (merch passes its order id): a repeated key returns the first outcome, a
// refusal for insufficient funds included, so a refused order can never be
// charged later.
func (s *Service) Charge(ctx context.Context, cmd ChargeCmd) (TxResult, error) {
	id, amount, err := validateCharge(cmd)
	if err != nil {
		return TxResult{}, err
	}
	return s.apply(ctx, Movement{
		Kind:        events.KindPurchase,
		Key:         "charge:" + cmd.IdempotencyKey,
		RequestHash: requestHash(events.KindPurchase, id.String(), "", amount),
		From:        id,
		Amount:      amount,
		Reason:      cmd.Reason,
	})
}

// Credit gives coins to a user (a refund or a replenishment), idempotently
// per key.
func (s *Service) Credit(ctx context.Context, cmd ChargeCmd) (TxResult, error) {
	id, amount, err := validateCharge(cmd)
	if err != nil {
		return TxResult{}, err
	}
	return s.apply(ctx, Movement{
		Kind:        events.KindCredit,
		Key:         "credit:" + cmd.IdempotencyKey,
		RequestHash: requestHash(events.KindCredit, "", id.String(), amount),
		To:          id,
		Amount:      amount,
		Reason:      cmd.Reason,
	})
}

func validateCharge(cmd ChargeCmd) (uuid.UUID, int64, error) {
	if err := ValidateAmount(cmd.Amount); err != nil {
		return uuid.Nil, 0, err
	}
	id, err := ParseUserID(cmd.UserID)
	if err != nil {
		return uuid.Nil, 0, err
	}
	if err := ValidateKey(cmd.IdempotencyKey); err != nil {
		return uuid.Nil, 0, err
	}
	if err := ValidateReason(cmd.Reason); err != nil {
		return uuid.Nil, 0, err
	}
	return id, ToMinor(cmd.Amount), nil
}

// apply is replay-or-move for a movement whose parties are known.
func (s *Service) apply(ctx context.Context, m Movement) (TxResult, error) {
	if res, ok, err := s.replay(ctx, m); ok || err != nil {
		return res, err
	}
	return s.move(ctx, m)
}

// replay answers a request whose key is already recorded: the first
// outcome when it asks for the same thing, ErrKeyReused otherwise. The
// first outcome is the transaction, or the refusal the key was answered
// with: a refusal is final for its key, never tried again, because a caller
// may already have acted on it (merch fails the order; a retry that then
// paid would take coins for a failed order). ok is false when the key is
// new.
func (s *Service) replay(ctx context.Context, m Movement) (res TxResult, ok bool, err error) {
	stored, err := s.repo.FindTransaction(ctx, m.Key)
	if errors.Is(err, ErrNoTransaction) {
		return TxResult{}, false, nil
	}
	if err != nil {
		return TxResult{}, false, fmt.Errorf("find transaction: %w", err)
	}
	if stored.RequestHash != m.RequestHash {
		return TxResult{}, false, ErrKeyReused
	}
	if stored.Refusal != nil {
		return TxResult{}, true, fmt.Errorf("%s %s refused before: %w", m.Kind, m.Key, stored.Refusal)
	}
	return TxResult{TransactionID: stored.ID.String(), Replayed: true}, true, nil
}

// move applies a movement with a new transaction id. When another request
// with the same key got there first (a concurrent one, or one that was
// refused), its outcome is the answer.
func (s *Service) move(ctx context.Context, m Movement) (TxResult, error) {
	m.ID = uuid.New()
	err := s.moveTold(ctx, m)
	if errors.Is(err, ErrDuplicateKey) {
		res, ok, rerr := s.replay(ctx, m)
		if rerr != nil {
			return TxResult{}, rerr
		}
		if !ok {
			return TxResult{}, fmt.Errorf("%s %s: key conflict but no outcome recorded: %w", m.Kind, m.Key, err)
		}
		return res, nil
	}
	if err != nil {
		return TxResult{}, fmt.Errorf("%s: %w", m.Kind, err)
	}
	s.notified()
	return TxResult{TransactionID: m.ID.String()}, nil
}

// moveTold applies m between Begin and End of the view cache on its
// parties, committing no later than the change's CommitBy (the movement's
// context ends then, so a commit cannot outlive the cache's lease).
func (s *Service) moveTold(ctx context.Context, m Movement) error {
	var parties []string
	for _, id := range []uuid.UUID{m.From, m.To} {
		if id != uuid.Nil {
			parties = append(parties, id.String())
		}
	}
	c, err := s.views.Begin(ctx, parties...)
	defer func() {
		ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), endTimeout)
		defer cancel()
		if err := s.views.End(ectx, c); err != nil {
			s.log.WarnContext(ctx, "view cache: a movement's end was not recorded; its lease keeps the views uncached until it runs out",
				"error", err, "kind", m.Kind)
		}
	}()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrViewsUnavailable, err)
	}
	if by := c.CommitBy(); !by.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, by)
		defer cancel()
	}
	return s.repo.Move(ctx, m)
}

// Balance returns a user's balance in coins.
func (s *Service) Balance(ctx context.Context, userID string) (int64, error) {
	id, err := ParseUserID(userID)
	if err != nil {
		return 0, err
	}
	b, err := s.repo.Balance(ctx, id)
	if err != nil {
		return 0, fmt.Errorf("balance: %w", err)
	}
	return ToCoins(b), nil
}

// History returns a user's transfers grouped per counterpart, in coins,
// each list ordered by username; lists are empty (not nil) when there is
// nothing, also for a user without an account.
func (s *Service) History(ctx context.Context, userID string) (History, error) {
	id, err := ParseUserID(userID)
	if err != nil {
		return History{}, err
	}
	h, err := s.repo.History(ctx, id)
	if err != nil {
		return History{}, fmt.Errorf("history: %w", err)
	}
	return History{Received: toCoins(h.Received), Sent: toCoins(h.Sent)}, nil
}

// Overview returns a user's balance and history in coins, read together
// (one snapshot, so the balance always matches the transfers listed);
// ErrAccountNotFound when the user has no account.
func (s *Service) Overview(ctx context.Context, userID string) (Overview, error) {
	id, err := ParseUserID(userID)
	if err != nil {
		return Overview{}, err
	}
	o, err := s.repo.Overview(ctx, id)
	if err != nil {
		return Overview{}, fmt.Errorf("overview: %w", err)
	}
	return Overview{Balance: ToCoins(o.Balance), History: History{Received: toCoins(o.Received), Sent: toCoins(o.Sent)}}, nil
}

func toCoins(in []Counterpart) []Counterpart {
	out := make([]Counterpart, 0, len(in))
	for _, c := range in {
		out = append(out, Counterpart{Username: c.Username, Amount: ToCoins(c.Amount)})
	}
	return out
}

func (s *Service) notified() {
	if s.notify != nil {
		s.notify.Notify()
	}
}
