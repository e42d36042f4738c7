package codepkg

import "strings"

// checkLinks refuses the package if any of its links, followed the way
// the kernel would once the package is unpacked, leaves the package or does
// not resolve within MaxLinkHops links.
func (p *Package) checkLinks() error {
	budget := resolveBudget
	for _, e := range p.entries {
		if e.Kind != Symlink {
			continue
		}
		if err := p.resolve(e, &budget); err != nil {
			return err
		}
	}
	return nil
}

// resolve walks link e's target component by component, as the kernel's
// path walk does: the target is read relative to the link's directory, a
// link met on the way (as an intermediate or the final component) is
// replaced by its own target, read relative to its own directory, and ".."
// goes to the parent of where the walk stands, links already resolved. The
// walk escapes when ".." is taken at the package root; an absolute target
// is refused before (readTarget).
//
// A component the package does not hold (a dangling link, or a link to a
// file that will exist only if someone creates it) is walked lexically: the
// walk counts how deep it stands below the last place the package holds,
// and ".." climbs back. That is the most the path could ever mean in the
// read-only unpacked tree, so "x/../.." still escapes even if x is missing.
// Dangling links that stay inside are accepted, as Lambda keeps them.
//
// budget is shared by all the links of a package and decremented per
// component walked.
func (p *Package) resolve(e *Entry, budget *int) error {
	at := p.root // the link's directory
	for _, part := range strings.Split(e.Name, "/")[:strings.Count(e.Name, "/")] {
		at = at.children[part]
	}
	missing := 0 // components walked below at that the package does not hold
	hops := 1    // e itself, as the kernel counts it when it follows e
	// todo is a stack of components still to walk, the next one last.
	todo := pushTarget(nil, e.Target)
	for len(todo) > 0 {
		if *budget--; *budget < 0 {
			return refusef("Symbolic links of the package are chained too deeply to check (at %q)", clip(e.Name))
		}
		part := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		switch {
		case part == "" || part == ".":
			continue
		case part == ".." && missing > 0:
			missing--
			continue
		case part == "..":
			if at.parent == nil {
				return outside(e.Name, e.Target)
			}
			at = at.parent
			continue
		case missing > 0:
			missing++
			continue
		}
		next := at.children[part]
		switch {
		case next == nil:
			missing = 1
		case next.kind() == Symlink:
			if hops++; hops > MaxLinkHops {
				return refusef("Symbolic link %q does not resolve: more than %d links on its path", clip(e.Name), MaxLinkHops)
			}
			// The walk stays in the link's directory, which is at.
			todo = pushTarget(todo, next.entry.Target)
		default:
			// A regular file with components after it is walked like a
			// directory: the kernel would stop (ENOTDIR), which is no
			// escape, and the lexical walk is the stricter of the two.
			at = next
		}
	}
	return nil
}

// pushTarget pushes target's components on the stack todo so that the
// first component is walked next.
func pushTarget(todo []string, target string) []string {
	parts := strings.Split(target, "/")
	for i := len(parts) - 1; i >= 0; i-- {
		todo = append(todo, parts[i])
	}
	return todo
}
