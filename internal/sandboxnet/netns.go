package sandboxnet

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NewNamespace creates a network namespace with its loopback up and
// nothing else, and bind-mounts it at path, a file it creates, for
// sandboxes whose runtime joins a namespace by path (runsc, whose netstack
// copies the namespace's interfaces, loopback included, when it is up).
// RemoveNamespace undoes it.
func NewNamespace(path string) (err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return fmt.Errorf("creating network namespace: %w", err)
	}
	f.Close()
	defer func() {
		if err != nil {
			os.Remove(path)
		}
	}()
	// unshare moves only this thread; it goes back before it is unlocked,
	// and a thread that cannot go back is never unlocked, so the runtime
	// ends it instead of running other goroutines in the new namespace.
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("creating network namespace: %w", err)
	}
	defer orig.Close()
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("creating network namespace: %w", err)
	}
	src := "/proc/self/task/" + strconv.Itoa(unix.Gettid()) + "/ns/net"
	merr := unix.Mount(src, path, "", unix.MS_BIND, "")
	if err := netns.Set(orig); err != nil {
		return fmt.Errorf("creating network namespace: returning to the host's: %w", err)
	}
	runtime.UnlockOSThread()
	if merr != nil {
		return fmt.Errorf("creating network namespace: mounting it at %s: %w", path, merr)
	}
	defer func() {
		if err != nil {
			unix.Unmount(path, unix.MNT_DETACH)
		}
	}()
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("creating network namespace: %w", err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("creating network namespace: %w", err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		return fmt.Errorf("creating network namespace: loopback up: %w", err)
	}
	return nil
}

// RemoveNamespace unmounts and removes a namespace made by NewNamespace.
// The namespace, and the sandbox end of its link with it, goes once no
// process is left in it. Idempotent.
func RemoveNamespace(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
		return fmt.Errorf("removing network namespace %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("removing network namespace %s: %w", path, err)
	}
	return nil
}

// Do runs fn on an OS thread moved into the network namespace at nsPath,
// and returns what fn returns. Sockets fn creates belong to that namespace
// for their whole life, whichever goroutine uses them later. The thread
// returns to its namespace before the runtime may run anything else on
// it; one that cannot is never unlocked, so the runtime ends it.
func Do(nsPath string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		target, err := netns.GetFromPath(nsPath)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("entering network namespace %s: %w", nsPath, err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("leaving network namespace %s: %w", nsPath, err))
			return // still locked: the thread ends with this goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
