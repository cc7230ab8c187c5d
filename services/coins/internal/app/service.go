// Package app holds the coins use cases: accounts, transfers, charges and
// credits with their money and idempotency rules. Storage is behind
// Repository, declared here and implemented in adapters/postgres.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/merchshop/merchshop/pkg/events"
	"github.com/merchshop/merchshop/pkg/viewcache"
)

// Movement is one money movement for the repository to record: the
// transaction, its ledger entries, the balances, the transfer totals and
// its event. Amount is in minor units. From is uuid.Nil for credits, To is
// uuid.Nil for purchases.
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

// MoveRequest names what a movement's locked section needs: its
// idempotency key and the accounts it touches, the payee by id or, for a
// transfer, by username (resolved under the lock, in the same round trip).
type MoveRequest struct {
	Key    string
	From   uuid.UUID
	To     uuid.UUID
	ToName string
}

// Account is an account as read under its row lock.
type Account struct {
	ID       uuid.UUID
	Username string
	Balance  int64
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

// Locked is what the repository read under the locks of a MoveRequest's
// accounts: each account (nil when there is none), the key's recorded
// outcome (nil when the key is new), and the transaction's time.
type Locked struct {
	From    *Account
	To      *Account
	Outcome *StoredTransaction
	At      time.Time
}

// Verdict is what a Decision asks the repository to write.
type Verdict int

// Verdicts.
const (
	// WriteNothing ends the locked section without a write (a replay).
	WriteNothing Verdict = iota
	// WriteMovement records Decision.Movement.
	WriteMovement
	// WriteRefusal records that Decision.Movement was refused for
	// insufficient funds, as the outcome of its key.
	WriteRefusal
)

// Decision is the use case's answer to what it found locked.
type Decision struct {
	Verdict  Verdict
	Movement Movement
	// CommitBy, when set, is the latest time the write may commit (the
	// view cache's lease); the repository gives up rather than commit
	// later.
	CommitBy time.Time
}

// Decide decides a movement from what its locked section read. It may be
// called more than once for one Move (a serialization failure runs the
// section again); an error ends the section with nothing written and is
// Move's error.
type Decide func(ctx context.Context, l Locked) (Decision, error)

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

// Repository stores accounts and the ledger. It locks and loads; the rules
// (funds, recipients, idempotency) are the use cases', passed in as Decide.
type Repository interface {
	// OpenAccount creates the account with a grant of grantMinor recorded as
	// transaction grantKey, or returns the existing account's balance with
	// created=false. ErrUsernameTaken when another user has the username.
	OpenAccount(ctx context.Context, userID uuid.UUID, username string, grantMinor int64, grantKey, grantHash string) (balanceMinor int64, created bool, err error)
	// Move locks the accounts of req (in user id order) and reads them with
	// the outcome recorded under req.Key, asks decide, writes what it
	// decided and commits, all in one transaction: every outcome of a key
	// is decided under its payer's lock, so a key has one outcome. Errors:
	// decide's, ErrBusy (contention outlasted the retries), or the
	// storage's.
	Move(ctx context.Context, req MoveRequest, decide Decide) error
	// Overview returns the balance and the transfers grouped per
	// counterpart (each list ordered by username) in minor units, from one
	// snapshot; ErrAccountNotFound.
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
	// A name that is never a username has no account: nothing to lock. (A
	// key recorded before has a valid recipient: the rule keeps accepting
	// every stored name.)
	if !ValidUsername(cmd.ToUsername) {
		return TxResult{}, ErrUnknownRecipient
	}
	return s.move(ctx, MoveRequest{Key: m.Key, From: from, ToName: cmd.ToUsername}, m)
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
	m := Movement{
		Kind:        events.KindPurchase,
		Key:         "charge:" + cmd.IdempotencyKey,
		RequestHash: requestHash(events.KindPurchase, id.String(), "", amount),
		From:        id,
		Amount:      amount,
		Reason:      cmd.Reason,
	}
	return s.move(ctx, MoveRequest{Key: m.Key, From: id}, m)
}

// Credit gives coins to a user (a refund or a replenishment), idempotently
// per key.
func (s *Service) Credit(ctx context.Context, cmd ChargeCmd) (TxResult, error) {
	id, amount, err := validateCharge(cmd)
	if err != nil {
		return TxResult{}, err
	}
	m := Movement{
		Kind:        events.KindCredit,
		Key:         "credit:" + cmd.IdempotencyKey,
		RequestHash: requestHash(events.KindCredit, "", id.String(), amount),
		To:          id,
		Amount:      amount,
		Reason:      cmd.Reason,
	}
	return s.move(ctx, MoveRequest{Key: m.Key, To: id}, m)
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

// move runs m through the repository's locked section and decides it there
// (see decide). The view cache is told before anything is written: the
// change begins inside the locked section, once the parties are known, and
// ends after the commit.
func (s *Service) move(ctx context.Context, req MoveRequest, m Movement) (TxResult, error) {
	m.ID = uuid.New()
	var (
		res     TxResult
		refused bool
		change  *viewcache.Change
	)
	defer func() {
		if change == nil {
			return
		}
		ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), endTimeout)
		defer cancel()
		if err := s.views.End(ectx, *change); err != nil {
			s.log.WarnContext(ctx, "view cache: a movement's end was not recorded; its lease keeps the views uncached until it runs out",
				"error", err, "kind", m.Kind)
		}
	}()
	err := s.repo.Move(ctx, req, func(ctx context.Context, l Locked) (Decision, error) {
		d, replay, err := decide(m, l)
		res, refused = replay, d.Verdict == WriteRefusal
		if err != nil || d.Verdict != WriteMovement {
			return d, err
		}
		if change == nil {
			// A section run again (after a serialization failure) keeps the
			// change it began: the parties are the same.
			c, err := s.views.Begin(ctx, parties(d.Movement)...)
			change = &c
			if err != nil {
				return Decision{}, fmt.Errorf("%w: %w", ErrViewsUnavailable, err)
			}
		}
		d.CommitBy = change.CommitBy()
		res = TxResult{TransactionID: d.Movement.ID.String()}
		return d, nil
	})
	if err != nil {
		return TxResult{}, fmt.Errorf("%s: %w", m.Kind, err)
	}
	if refused {
		// Decided as a refusal, recorded and committed.
		return TxResult{}, fmt.Errorf("%s: %w", m.Kind, ErrInsufficientFunds)
	}
	if !res.Replayed {
		s.notified()
	}
	return res, nil
}

// decide is the money rule of a movement, applied to what was read under
// its accounts' locks. In order: a key with an outcome answers it (the
// first outcome again when the request is the same, ErrKeyReused when it
// is not; a refusal is final for its key, never tried again, because a
// caller may already have acted on it: merch fails the order, and a retry
// that then paid would take coins for a failed order); a payer or payee
// without an account is refused unrecorded; a payer without the funds is
// refused, and the refusal recorded as the key's outcome; otherwise m is
// recorded, with the payee resolved. replay is the answer of a replayed
// key.
func decide(m Movement, l Locked) (d Decision, replay TxResult, err error) {
	if o := l.Outcome; o != nil {
		switch {
		case o.RequestHash != m.RequestHash:
			return Decision{}, TxResult{}, ErrKeyReused
		case o.Refusal != nil:
			return Decision{}, TxResult{}, fmt.Errorf("%s %s refused before: %w", m.Kind, m.Key, o.Refusal)
		}
		return Decision{Verdict: WriteNothing}, TxResult{TransactionID: o.ID.String(), Replayed: true}, nil
	}
	if m.From != uuid.Nil && l.From == nil {
		return Decision{}, TxResult{}, ErrAccountNotFound
	}
	switch {
	case m.Kind == events.KindTransfer && l.To == nil:
		return Decision{}, TxResult{}, ErrUnknownRecipient
	case m.Kind == events.KindTransfer && l.To.ID == m.From:
		return Decision{}, TxResult{}, ErrSelfTransfer
	case m.Kind != events.KindPurchase && l.To == nil:
		return Decision{}, TxResult{}, ErrAccountNotFound
	}
	if l.To != nil {
		m.To = l.To.ID
	}
	if m.From != uuid.Nil && l.From.Balance < m.Amount {
		return Decision{Verdict: WriteRefusal, Movement: m}, TxResult{}, nil
	}
	return Decision{Verdict: WriteMovement, Movement: m}, TxResult{}, nil
}

// parties are the users whose balance or history m changes.
func parties(m Movement) []string {
	var ids []string
	for _, id := range []uuid.UUID{m.From, m.To} {
		if id != uuid.Nil {
			ids = append(ids, id.String())
		}
	}
	return ids
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
