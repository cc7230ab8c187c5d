package main

// The idempotency keys the services derive from a client's Idempotency-Key,
// read from their code; the checks find a request's effects by them.

// backendKey is the gateway's key for a client key (services/gateway,
// internal/transport/httpapi/idempotency.go): scoped to the route's
// namespace and the user. The suite's keys are short printable ASCII, which
// the gateway passes through unhashed.
func backendKey(ns, userID, clientKey string) string {
	return "http:" + ns + ":" + userID + ":" + clientKey
}

// transferKey is the coins ledger's key of a transfer (services/coins,
// internal/app/service.go Transfer).
func transferKey(fromID, clientKey string) string {
	return "transfer:" + fromID + ":" + backendKey("sendCoin", fromID, clientKey)
}

// orderKey is the merch order's idempotency_key (the gateway's key).
func orderKey(userID, clientKey string) string { return backendKey("buy", userID, clientKey) }

// chargeKey is the ledger key of an order's charge: merch charges with
// "order:<id>" (internal/app/service.go drive) and coins prefixes
// "charge:" (Charge).
func chargeKey(orderID string) string { return "charge:order:" + orderID }

// refundKey is the ledger key of an order's refund: merch credits with
// "refund:<id>", coins prefixes "credit:".
func refundKey(orderID string) string { return "credit:refund:" + orderID }

// openKey is the ledger key of the 1000-coin welcome grant (coins
// OpenAccount).
func openKey(userID string) string { return "open:" + userID }
