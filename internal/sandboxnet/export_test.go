package sandboxnet

// SetNextIndex makes the next Attach try link index i first, so that a
// test can have a freed name taken again.
func (n *Network) SetNextIndex(i uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cursor = i
}
