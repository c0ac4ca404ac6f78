package patterns

import (
	"math/rand/v2"
	"time"
)

// MaxVisibilityTimeout is the longest visibility timeout SQS accepts.
const MaxVisibilityTimeout = 12 * time.Hour

// ExponentialBackoff returns a ConsumerOptions.Backoff: base doubled for
// each receive after the first, with full jitter (between half and all of
// it, so that a burst of failures does not come back as a burst), capped
// at max and at the SQS maximum of 12 hours.
func ExponentialBackoff(base, max time.Duration) func(receiveCount int) time.Duration {
	if max <= 0 || max > MaxVisibilityTimeout {
		max = MaxVisibilityTimeout
	}
	return func(receiveCount int) time.Duration {
		d := base
		for i := 1; i < receiveCount && d < max; i++ {
			d *= 2
		}
		d = min(d, max)
		return d/2 + rand.N(d/2+1)
	}
}

// VisibilitySeconds converts a backoff to the whole seconds SQS's
// VisibilityTimeout takes, rounding up so that a short backoff is never 0
// (which would redeliver at once), within 1s..12h. The Consumer and the
// Lambda adapter set a failed message's visibility with it.
func VisibilitySeconds(d time.Duration) int32 {
	secs := (d + time.Second - 1) / time.Second
	return int32(max(1, min(secs, MaxVisibilityTimeout/time.Second)))
}
