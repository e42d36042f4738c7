package sandboxnet

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/ignis-run/ignis/internal/fnspec"
)

// TableName is the shared nftables table (family inet).
const TableName = "ignis"

// natMark is the conntrack mark bit that tells the NAT chain a connection
// came from a sandbox: postrouting knows no input interface, and matching
// source addresses would tie the shared table to one worker's pool. One bit,
// OR-ed in, so other users of the mark keep theirs.
const natMark = 1 << 20

// connlimitOver is NFT_CONNLIMIT_F_INV (linux/netfilter/nf_tables.h):
// match when the count is over the limit.
const connlimitOver = 1

// Chain and map names in the table.
const (
	chainForward     = "forward"
	chainInput       = "input"
	chainPostrouting = "postrouting"
	chainFrom        = "from_sandbox"
	chainTo          = "to_sandbox"
	chainToHost      = "sandbox_to_host"
	mapOut           = "sb_out" // host-side ifname → jump its egress chain
	mapIn            = "sb_in"  // host-side ifname → jump its ingress chain
	sandboxChainPfx  = "sb_"
)

var table = &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}

// Destinations no sandbox reaches unless its allow-list names them:
// "this network", loopback, link-local (cloud metadata), multicast and the
// reserved block. The host's own addresses and other sandboxes are refused
// by hook and interface instead (see doc).
var deniedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("224.0.0.0/3"),
}

func outChain(ifname string) string { return sandboxChainPfx + ifname + "_out" }
func inChain(ifname string) string  { return sandboxChainPfx + ifname + "_in" }

// installBase (re)writes the table's base chains in one transaction: every
// worker writes the same, so whichever ran last, the rules are whole.
// Sandbox chains and map elements are kept.
//
// Preconditions: n.mu is held.
func (n *Network) installBase() error {
	c := n.nft
	c.AddTable(table)
	out := &nftables.Set{Table: table, Name: mapOut, IsMap: true, KeyType: nftables.TypeIFName, DataType: nftables.TypeVerdict}
	in := &nftables.Set{Table: table, Name: mapIn, IsMap: true, KeyType: nftables.TypeIFName, DataType: nftables.TypeVerdict}
	for _, s := range []*nftables.Set{out, in} {
		if err := c.AddSet(s, nil); err != nil {
			return err
		}
	}
	accept := nftables.ChainPolicyAccept
	// Just before the usual filter priority, so that another table's
	// accept cannot come first; a drop anywhere is final regardless.
	prio := nftables.ChainPriorityRef(-10)
	chains := map[string]*nftables.Chain{
		chainForward:     {Name: chainForward, Table: table, Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookForward, Priority: prio, Policy: &accept},
		chainInput:       {Name: chainInput, Table: table, Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookInput, Priority: prio, Policy: &accept},
		chainPostrouting: {Name: chainPostrouting, Table: table, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource, Policy: &accept},
		chainFrom:        {Name: chainFrom, Table: table},
		chainTo:          {Name: chainTo, Table: table},
		chainToHost:      {Name: chainToHost, Table: table},
	}
	for _, ch := range chains {
		c.AddChain(ch)
		c.FlushChain(ch)
	}
	rule := func(chain string, exprs ...expr.Any) {
		c.AddRule(&nftables.Rule{Table: table, Chain: chains[chain], Exprs: exprs})
	}
	jump := func(to string) expr.Any { return &expr.Verdict{Kind: expr.VerdictJump, Chain: to} }
	drop := &expr.Verdict{Kind: expr.VerdictDrop}

	rule(chainForward, cat(ifPrefixMatch(expr.MetaKeyIIFNAME), jump(chainFrom))...)
	rule(chainForward, cat(ifPrefixMatch(expr.MetaKeyOIFNAME), jump(chainTo))...)
	rule(chainInput, cat(ifPrefixMatch(expr.MetaKeyIIFNAME), jump(chainToHost))...)

	// From a sandbox, in order.
	rule(chainFrom, cat(nfproto(unix.NFPROTO_IPV6), drop)...)
	rule(chainFrom, // spoofed source: the route back to it is not this interface
		&expr.Fib{Register: 1, FlagSADDR: true, FlagIIF: true, ResultOIF: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0, 0, 0, 0}},
		drop)
	rule(chainFrom, cat(notInMap(expr.MetaKeyIIFNAME, out), drop)...)
	// Marked before the sandbox's chain may accept (an allowed prefix
	// beyond the host needs NAT too); a dropped packet's mark is moot.
	rule(chainFrom, cat(ctStateIs(expr.CtStateBitNEW), setNATMark())...)
	rule(chainFrom, cat(vmap(expr.MetaKeyIIFNAME, out))...)
	for _, p := range deniedPrefixes {
		rule(chainFrom, cat(daddrIn(p), drop)...)
	}
	rule(chainFrom, cat(ifPrefixMatch(expr.MetaKeyOIFNAME), drop)...) // another sandbox

	// To a sandbox: its rate limit, then replies only.
	rule(chainTo, cat(vmap(expr.MetaKeyOIFNAME, in))...)
	rule(chainTo, cat(ctStateIs(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), &expr.Verdict{Kind: expr.VerdictAccept})...)
	rule(chainTo, drop)

	// To the host itself: the allow-list or nothing.
	rule(chainToHost, cat(nfproto(unix.NFPROTO_IPV6), drop)...)
	rule(chainToHost, cat(notInMap(expr.MetaKeyIIFNAME, out), drop)...)
	rule(chainToHost, cat(vmap(expr.MetaKeyIIFNAME, out))...)
	rule(chainToHost, drop)

	rule(chainPostrouting, cat(hasNATMark(),
		&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte(IfPrefix)},
		&expr.Masq{})...)
	return c.Flush()
}

// installSandbox writes the chains of one sandbox interface and points the
// maps at them, in one transaction. A chain of the same name left by a
// sandbox that died unswept is emptied first.
//
// Preconditions: n.mu is held.
func (n *Network) installSandbox(ifname string, pol fnspec.Network) error {
	c := n.nft
	out := &nftables.Chain{Name: outChain(ifname), Table: table}
	in := &nftables.Chain{Name: inChain(ifname), Table: table}
	for _, ch := range []*nftables.Chain{out, in} {
		c.AddChain(ch)
		c.FlushChain(ch)
	}
	drop := &expr.Verdict{Kind: expr.VerdictDrop}
	accept := &expr.Verdict{Kind: expr.VerdictAccept}
	rule := func(ch *nftables.Chain, exprs ...expr.Any) {
		c.AddRule(&nftables.Rule{Table: table, Chain: ch, Exprs: exprs})
	}
	rule(out, cat(ctStateIs(expr.CtStateBitNEW), []expr.Any{&expr.Connlimit{Count: n.cfg.MaxConns, Flags: connlimitOver}, drop})...)
	rule(out, n.rateOver(), drop)
	allow := pol.Allow
	if n.fwd != nil {
		allow = append([]fnspec.Allow{{Prefix: netip.PrefixFrom(n.fwd.addr, 32), PortLo: 53, PortHi: 53}}, allow...)
	}
	for _, a := range allow {
		for _, r := range allowRules(a) {
			rule(out, append(r, accept)...)
		}
	}
	for _, p := range n.cfg.Deny {
		rule(out, cat(daddrIn(p), drop)...)
	}
	rule(in, n.rateOver(), drop)

	key := ifKey(ifname)
	if err := c.SetAddElements(&nftables.Set{Table: table, Name: mapOut, IsMap: true, KeyType: nftables.TypeIFName, DataType: nftables.TypeVerdict},
		[]nftables.SetElement{{Key: key, VerdictData: &expr.Verdict{Kind: expr.VerdictJump, Chain: out.Name}}}); err != nil {
		return err
	}
	if err := c.SetAddElements(&nftables.Set{Table: table, Name: mapIn, IsMap: true, KeyType: nftables.TypeIFName, DataType: nftables.TypeVerdict},
		[]nftables.SetElement{{Key: key, VerdictData: &expr.Verdict{Kind: expr.VerdictJump, Chain: in.Name}}}); err != nil {
		return err
	}
	return c.Flush()
}

// removeSandbox deletes a sandbox interface's map elements and chains,
// whichever of them exist.
//
// Preconditions: n.mu is held.
func (n *Network) removeSandbox(ifname string) error {
	c := n.nft
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return fmt.Errorf("listing chains: %w", err)
	}
	have := map[string]bool{}
	for _, ch := range chains {
		if ch.Table.Name == TableName {
			have[ch.Name] = true
		}
	}
	key := ifKey(ifname)
	for _, m := range []string{mapOut, mapIn} {
		s := &nftables.Set{Table: table, Name: m, IsMap: true, KeyType: nftables.TypeIFName, DataType: nftables.TypeVerdict}
		elems, err := c.GetSetElements(s)
		if err != nil {
			return fmt.Errorf("listing %s: %w", m, err)
		}
		for _, e := range elems {
			if string(e.Key) == string(key) {
				if err := c.SetDeleteElements(s, []nftables.SetElement{{Key: key}}); err != nil {
					return err
				}
			}
		}
	}
	for _, name := range []string{outChain(ifname), inChain(ifname)} {
		if have[name] {
			c.FlushChain(&nftables.Chain{Name: name, Table: table})
			c.DelChain(&nftables.Chain{Name: name, Table: table})
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("removing rules of %s: %w", ifname, err)
	}
	return nil
}

// sandboxChains lists the host-side interface names that have chains.
//
// Preconditions: n.mu is held.
func (n *Network) sandboxChains() ([]string, error) {
	chains, err := n.nft.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("listing chains: %w", err)
	}
	var out []string
	for _, ch := range chains {
		if ch.Table.Name != TableName || !strings.HasPrefix(ch.Name, sandboxChainPfx) {
			continue
		}
		if name, ok := strings.CutSuffix(strings.TrimPrefix(ch.Name, sandboxChainPfx), "_out"); ok {
			out = append(out, name)
		}
	}
	return out, nil
}

// rateOver matches bytes beyond the sandbox's bandwidth. The kernel's
// bucket holds a second's worth plus the burst: no burst, so a sandbox
// bursts one second of its rate.
func (n *Network) rateOver() expr.Any {
	return &expr.Limit{Type: expr.LimitTypePktBytes, Rate: n.cfg.RateBytes, Unit: expr.LimitTimeSecond, Over: true}
}

// allowRules are the matches of one allow-list entry: any protocol to the
// prefix, or TCP and UDP to its ports.
func allowRules(a fnspec.Allow) [][]expr.Any {
	if a.PortLo == 0 {
		return [][]expr.Any{daddrIn(a.Prefix)}
	}
	var out [][]expr.Any
	for _, proto := range []byte{unix.IPPROTO_TCP, unix.IPPROTO_UDP} {
		r := daddrIn(a.Prefix)
		r = append(r,
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Cmp{Op: expr.CmpOpGte, Register: 1, Data: binary.BigEndian.AppendUint16(nil, a.PortLo)},
			&expr.Cmp{Op: expr.CmpOpLte, Register: 1, Data: binary.BigEndian.AppendUint16(nil, a.PortHi)},
		)
		out = append(out, r)
	}
	return out
}

// daddrIn matches IPv4 destinations in p (callers have ruled IPv6 out).
func daddrIn(p netip.Prefix) []expr.Any {
	p = p.Masked()
	net4 := p.Addr().As4()
	mask := [4]byte{}
	binary.BigEndian.PutUint32(mask[:], ^uint32(0)<<(32-p.Bits()))
	if p.Bits() == 0 {
		mask = [4]byte{}
	}
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask[:], Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: net4[:]},
	}
}

// ifPrefixMatch matches an interface name starting with IfPrefix.
func ifPrefixMatch(key expr.MetaKey) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte(IfPrefix)},
	}
}

func nfproto(p byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}},
	}
}

func vmap(key expr.MetaKey, m *nftables.Set) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Lookup{SourceRegister: 1, SetName: m.Name, SetID: m.ID, DestRegister: 0, IsDestRegSet: true},
	}
}

func notInMap(key expr.MetaKey, m *nftables.Set) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Lookup{SourceRegister: 1, SetName: m.Name, SetID: m.ID, Invert: true},
	}
}

func ctStateIs(bitsSet uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binary.NativeEndian.AppendUint32(nil, bitsSet), Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{0, 0, 0, 0}},
	}
}

// setNATMark ORs natMark into the connection's mark.
func setNATMark() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeyMARK},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binary.NativeEndian.AppendUint32(nil, ^uint32(natMark)),
			Xor:  binary.NativeEndian.AppendUint32(nil, natMark)},
		&expr.Ct{Register: 1, Key: expr.CtKeyMARK, SourceRegister: true},
	}
}

func hasNATMark() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeyMARK},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binary.NativeEndian.AppendUint32(nil, natMark), Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{0, 0, 0, 0}},
	}
}

// ifKey is an interface name as an ifname set key: NUL-padded to IFNAMSIZ.
func ifKey(name string) []byte {
	k := make([]byte, unix.IFNAMSIZ)
	copy(k, name)
	return k
}

func cat(parts ...any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		switch v := p.(type) {
		case []expr.Any:
			out = append(out, v...)
		case expr.Any:
			out = append(out, v)
		}
	}
	return out
}
