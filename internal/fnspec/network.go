package fnspec

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Network modes.
const (
	// NetworkEgress: the sandbox reaches the world through NAT, like a
	// Lambda function outside a VPC, but never the host, the platform,
	// link-local metadata or another sandbox. The default.
	NetworkEgress = "egress"
	// NetworkNone: the sandbox has its loopback and nothing else, not even
	// a route.
	NetworkNone = "none"
)

// Tag keys that set a function's network policy. Tags are the extension
// point because the AWS CLI and SDKs send them unchanged on CreateFunction
// and TagResource, where an extra body field would be refused by their
// client-side validation.
const (
	TagNetwork      = "ignis:network"       // egress | none
	TagNetworkAllow = "ignis:network-allow" // space-separated Allow entries
)

// MaxAllow bounds a policy's allow-list: every entry is a firewall rule on
// the sandbox's path.
const MaxAllow = 16

// Network is a sandbox's network policy.
type Network struct {
	// Mode is NetworkEgress (also when empty) or NetworkNone.
	Mode string `json:"mode,omitempty"`
	// Allow lists destinations that egress reaches although the default
	// policy refuses them: services on the host itself or on addresses
	// the platform keeps sandboxes away from (a local database, say).
	Allow []Allow `json:"allow,omitempty"`
}

// Allow is one allow-list entry: TCP and UDP to Prefix, on ports
// PortLo–PortHi (0–0: every port).
type Allow struct {
	Prefix netip.Prefix `json:"prefix"`
	PortLo uint16       `json:"portLo,omitempty"`
	PortHi uint16       `json:"portHi,omitempty"`
}

// None reports whether the sandbox gets no network.
func (n Network) None() bool { return n.Mode == NetworkNone }

// String is the entry as ParseAllow reads it.
func (a Allow) String() string {
	switch {
	case a.PortLo == 0 && a.PortHi == 0:
		return a.Prefix.String()
	case a.PortLo == a.PortHi:
		return fmt.Sprintf("%s:%d", a.Prefix, a.PortLo)
	}
	return fmt.Sprintf("%s:%d-%d", a.Prefix, a.PortLo, a.PortHi)
}

// NetworkFromTags reads a function's network policy from its tags. Errors
// say which tag is wrong and why, for an InvalidParameterValueException.
func NetworkFromTags(tags map[string]string) (Network, error) {
	var n Network
	switch m := tags[TagNetwork]; m {
	case "", NetworkEgress:
	case NetworkNone:
		n.Mode = NetworkNone
	default:
		return Network{}, fmt.Errorf("tag %s must be %q or %q, not %q", TagNetwork, NetworkEgress, NetworkNone, m)
	}
	allow, err := ParseAllow(tags[TagNetworkAllow])
	if err != nil {
		return Network{}, fmt.Errorf("tag %s: %w", TagNetworkAllow, err)
	}
	if len(allow) > 0 && n.None() {
		return Network{}, fmt.Errorf("tag %s needs network egress, but %s is %q", TagNetworkAllow, TagNetwork, NetworkNone)
	}
	n.Allow = allow
	return n, nil
}

// ParseAllow reads a space-separated allow-list: each entry is an IPv4
// CIDR (or a bare address, meaning /32), optionally with ":PORT" or
// ":LOW-HIGH".
func ParseAllow(s string) ([]Allow, error) {
	fields := strings.Fields(s)
	if len(fields) > MaxAllow {
		return nil, fmt.Errorf("at most %d entries, not %d", MaxAllow, len(fields))
	}
	var out []Allow
	for _, f := range fields {
		a, err := parseAllowEntry(f)
		if err != nil {
			return nil, fmt.Errorf("entry %q: %w", f, err)
		}
		out = append(out, a)
	}
	return out, nil
}

func parseAllowEntry(f string) (Allow, error) {
	if strings.Count(f, ":") > 1 {
		return Allow{}, fmt.Errorf("only IPv4 is routed to sandboxes")
	}
	addr, ports, hasPorts := strings.Cut(f, ":")
	var a Allow
	var err error
	if strings.Contains(addr, "/") {
		a.Prefix, err = netip.ParsePrefix(addr)
	} else {
		var ip netip.Addr
		if ip, err = netip.ParseAddr(addr); err == nil {
			a.Prefix = netip.PrefixFrom(ip, ip.BitLen())
		}
	}
	if err != nil {
		return Allow{}, fmt.Errorf("not an address or CIDR")
	}
	if !a.Prefix.Addr().Is4() {
		return Allow{}, fmt.Errorf("only IPv4 is routed to sandboxes")
	}
	a.Prefix = a.Prefix.Masked()
	if !hasPorts {
		return a, nil
	}
	lo, hi, isRange := strings.Cut(ports, "-")
	if a.PortLo, err = parsePort(lo); err != nil {
		return Allow{}, err
	}
	a.PortHi = a.PortLo
	if isRange {
		if a.PortHi, err = parsePort(hi); err != nil {
			return Allow{}, err
		}
		if a.PortHi < a.PortLo {
			return Allow{}, fmt.Errorf("port range %d-%d is empty", a.PortLo, a.PortHi)
		}
	}
	return a, nil
}

func parsePort(s string) (uint16, error) {
	p, err := strconv.ParseUint(s, 10, 16)
	if err != nil || p == 0 {
		return 0, fmt.Errorf("port %q is not in 1-65535", s)
	}
	return uint16(p), nil
}
