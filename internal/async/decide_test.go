package async

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ignis-run/ignis/internal/registry"
)

func TestPolicy_Before(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	p := Policy{RetryDelay: time.Minute, BackoffMin: time.Second, BackoffMax: time.Minute}
	cfg := registry.EventInvokeConfig{MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 60}
	tests := []struct {
		name string
		ev   Event
		now  time.Time
		want action
	}{
		{"fresh", Event{Enqueued: t0}, t0, action{kind: actRun}},
		{"at_max_age", Event{Enqueued: t0}, t0.Add(60 * time.Second), action{kind: actRun}},
		{"expired", Event{Enqueued: t0, Attempts: 1}, t0.Add(61 * time.Second), action{kind: actFail, condition: CondEventAgeExceeded, invokes: 1}},
		{"retry_not_due", Event{Enqueued: t0, NotBefore: t0.Add(10 * time.Second)}, t0, action{kind: actWait, delay: 10 * time.Second}},
		{"retry_due", Event{Enqueued: t0, NotBefore: t0.Add(10 * time.Second)}, t0.Add(10 * time.Second), action{kind: actRun}},
		{"retry_after_expiry_waits_until_expiry", Event{Enqueued: t0, NotBefore: t0.Add(2 * time.Minute)}, t0.Add(30 * time.Second), action{kind: actWait, delay: 30*time.Second + time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := p.before(&tt.ev, &cfg, tt.now)
			if d := cmp.Diff(tt.want, got, cmp.AllowUnexported(action{})); d != "" {
				t.Fatalf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestPolicy_After(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	p := Policy{RetryDelay: time.Minute, BackoffMin: time.Second, BackoffMax: 8 * time.Second}
	cfg := func(retries, age int) registry.EventInvokeConfig {
		return registry.EventInvokeConfig{MaximumRetryAttempts: retries, MaximumEventAgeInSeconds: age}
	}
	tests := []struct {
		name      string
		cfg       registry.EventInvokeConfig
		ev        Event
		out       outcome
		delivered uint64
		now       time.Time
		want      action
	}{
		{"ok_first", cfg(2, 3600), Event{Enqueued: t0}, outOK, 1, t0, action{kind: actSucceed, condition: CondSuccess, invokes: 1}},
		{"ok_after_retries", cfg(2, 3600), Event{Enqueued: t0, Attempts: 2}, outOK, 1, t0, action{kind: actSucceed, condition: CondSuccess, invokes: 3}},
		{"error_first_retry_1x", cfg(2, 3600), Event{Enqueued: t0}, outFunctionError, 1, t0, action{kind: actRetry, notBefore: t0.Add(time.Minute)}},
		{"error_second_retry_2x", cfg(2, 3600), Event{Enqueued: t0, Attempts: 1}, outFunctionError, 1, t0, action{kind: actRetry, notBefore: t0.Add(2 * time.Minute)}},
		{"error_exhausted_2", cfg(2, 3600), Event{Enqueued: t0, Attempts: 2}, outFunctionError, 1, t0, action{kind: actFail, condition: CondRetriesExhausted, invokes: 3}},
		{"error_no_retries", cfg(0, 3600), Event{Enqueued: t0}, outFunctionError, 1, t0, action{kind: actFail, condition: CondRetriesExhausted, invokes: 1}},
		{"error_one_retry_exhausted", cfg(1, 3600), Event{Enqueued: t0, Attempts: 1}, outFunctionError, 1, t0, action{kind: actFail, condition: CondRetriesExhausted, invokes: 2}},
		{"throttle_first", cfg(2, 3600), Event{Enqueued: t0}, outThrottled, 1, t0, action{kind: actWait, delay: time.Second}},
		{"throttle_doubles", cfg(2, 3600), Event{Enqueued: t0}, outThrottled, 3, t0, action{kind: actWait, delay: 4 * time.Second}},
		{"throttle_capped", cfg(2, 3600), Event{Enqueued: t0}, outThrottled, 40, t0, action{kind: actWait, delay: 8 * time.Second}},
		{"throttle_capped_by_age", cfg(2, 60), Event{Enqueued: t0}, outThrottled, 40, t0.Add(57 * time.Second), action{kind: actWait, delay: 3*time.Second + time.Millisecond}},
		{"throttle_expired", cfg(2, 60), Event{Enqueued: t0, Attempts: 1}, outThrottled, 5, t0.Add(61 * time.Second), action{kind: actFail, condition: CondEventAgeExceeded, invokes: 1}},
		{"platform_backoff", cfg(2, 3600), Event{Enqueued: t0}, outPlatform, 2, t0, action{kind: actWait, delay: 2 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := p.after(&tt.ev, &tt.cfg, tt.out, tt.delivered, tt.now)
			if d := cmp.Diff(tt.want, got, cmp.AllowUnexported(action{})); d != "" {
				t.Fatalf("(-want +got):\n%s", d)
			}
		})
	}
}
