package httpapi

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// TrustedProxies are the networks whose X-Forwarded-For the gateway
// believes (its ingress or load balancer). Empty: the header is ignored and
// the client is the connection's peer.
type TrustedProxies []netip.Prefix

// ParseTrustedProxies reads addresses and CIDR prefixes ("10.0.0.0/8",
// "127.0.0.1", "::1").
func ParseTrustedProxies(list []string) (TrustedProxies, error) {
	var out TrustedProxies
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: not an address or CIDR prefix", s)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

func (t TrustedProxies) trusts(a netip.Addr) bool {
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// maxForwardedHops bounds the X-Forwarded-For entries looked at.
const maxForwardedHops = 32

// ClientAddr returns the key of the client's address for rate limiting: an
// IPv4 address, or the /64 an IPv6 address is in (one host usually holds a
// whole /64). It is the connection's peer, or, when that peer is a trusted
// proxy, the rightmost X-Forwarded-For entry that is not a trusted proxy.
// It returns "" only when RemoteAddr is not an IP address (in-process
// tests).
func ClientAddr(r *http.Request, trusted TrustedProxies) string {
	peer, ok := parseHostAddr(r.RemoteAddr)
	if !ok {
		return ""
	}
	client := peer
	if len(trusted) > 0 && trusted.trusts(peer) {
		client = forwardedClient(r.Header.Values("X-Forwarded-For"), trusted, peer)
	}
	return addrKey(client)
}

// forwardedClient walks X-Forwarded-For from the right (the entry the
// nearest proxy appended) past the trusted proxies. An entry that is not an
// address ends the walk at the last address seen: only a trusted proxy's
// word is taken.
func forwardedClient(values []string, trusted TrustedProxies, peer netip.Addr) netip.Addr {
	var hops []string
	for _, v := range values {
		hops = append(hops, strings.Split(v, ",")...)
	}
	client := peer
	for i, n := len(hops)-1, 0; i >= 0 && n < maxForwardedHops; i, n = i-1, n+1 {
		a, ok := parseHostAddr(strings.TrimSpace(hops[i]))
		if !ok {
			return client
		}
		client = a
		if !trusted.trusts(a) {
			return client
		}
	}
	return client
}

// parseHostAddr reads "ip", "ip:port", "[ipv6]" or "[ipv6]:port".
func parseHostAddr(s string) (netip.Addr, bool) {
	if len(s) > 64 {
		return netip.Addr{}, false
	}
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.WithZone("").Unmap(), true
}

func addrKey(a netip.Addr) string {
	if a.Is4() {
		return a.String()
	}
	p, err := a.Prefix(64)
	if err != nil {
		return a.String()
	}
	return p.String()
}
