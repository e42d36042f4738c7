// Package clock abstracts time so that keep-alive, leases, timeouts and retries
// can be tested without sleeping. Production code takes a Clock; tests pass a
// *Fake and move it forward by hand.
package clock

import (
	"sync"
	"time"
)

// Clock is the subset of package time that Ignis components use.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has elapsed.
	AfterFunc(d time.Duration, f func()) Timer
	// NewTimer returns a timer whose channel fires once after d.
	NewTimer(d time.Duration) Timer
}

// Timer is a stoppable timer. C is nil for timers made by AfterFunc.
type Timer interface {
	C() <-chan time.Time
	// Stop reports whether the call stopped the timer before it fired.
	Stop() bool
	Reset(d time.Duration) bool
}

// Real is the wall clock.
type Real struct{}

var _ Clock = Real{}

func (Real) Now() time.Time { return time.Now() }

func (Real) AfterFunc(d time.Duration, f func()) Timer { return realTimer{t: time.AfterFunc(d, f)} }

func (Real) NewTimer(d time.Duration) Timer { return realTimer{t: time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time        { return r.t.C }
func (r realTimer) Stop() bool                 { return r.t.Stop() }
func (r realTimer) Reset(d time.Duration) bool { return r.t.Reset(d) }

// Fake is a manually advanced clock for tests. It is safe for concurrent use.
type Fake struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer // guarded by mu
}

var _ Clock = (*Fake)(nil)

// NewFake returns a fake clock set to start.
func NewFake(start time.Time) *Fake { return &Fake{now: start} }

func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *Fake) AfterFunc(d time.Duration, fn func()) Timer {
	return f.add(d, fn, nil)
}

func (f *Fake) NewTimer(d time.Duration) Timer {
	return f.add(d, nil, make(chan time.Time, 1))
}

func (f *Fake) add(d time.Duration, fn func(), c chan time.Time) *fakeTimer {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &fakeTimer{clock: f, when: f.now.Add(d), fn: fn, c: c, active: true}
	f.timers = append(f.timers, t)
	return t
}

// Advance moves the clock forward by d and fires every timer that came due,
// in order of their deadlines.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	target := f.now.Add(d)
	for {
		var next *fakeTimer
		for _, t := range f.timers {
			if t.active && !t.when.After(target) && (next == nil || t.when.Before(next.when)) {
				next = t
			}
		}
		if next == nil {
			break
		}
		next.active = false
		if next.when.After(f.now) {
			f.now = next.when
		}
		now := f.now
		f.mu.Unlock()
		if next.fn != nil {
			go next.fn()
		} else {
			select {
			case next.c <- now:
			default:
			}
		}
		f.mu.Lock()
	}
	f.now = target
	f.mu.Unlock()
}

type fakeTimer struct {
	clock  *Fake
	when   time.Time // guarded by clock.mu
	active bool      // guarded by clock.mu
	fn     func()
	c      chan time.Time
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	was := t.active
	t.active = false
	return was
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	was := t.active
	t.active = true
	t.when = t.clock.now.Add(d)
	return was
}
