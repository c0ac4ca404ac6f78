package patterns

import (
	"fmt"
	"log/slog"
	"time"
)

// ConsumerOptions configures a Consumer (NewConsumer). Zero values take
// the defaults.
type ConsumerOptions struct {
	// ClaimCheck, when set, resolves claim-check pointers (the Extended
	// Client format) before the handler sees a message, and removes the
	// object after the message is deleted where it may (see ClaimCheck).
	// A pointer whose object cannot be read fails the message.
	ClaimCheck *ClaimCheck
	// Tracer, when set, runs each handler in a span that continues the
	// trace the message carries (patterns/oteltrace).
	Tracer Tracer
	// Metrics, when set, counts the messages received, handled, failed
	// and deleted, times each receive and each message's handling, and
	// counts the messages in flight (patterns/otelmetric).
	Metrics Metrics
	// Workers is how many handlers run at once. Default 10.
	Workers int
	// MaxInFlight bounds the messages received and not yet finished
	// (running plus waiting for a worker). Default Workers + MaxMessages.
	MaxInFlight int
	// MaxMessages is how many messages one ReceiveMessage asks for (1-10).
	// Default 10.
	MaxMessages int
	// WaitTime is the long-poll wait, 1s-20s; SQS counts whole seconds, so
	// a fraction is rounded up, and less than a second is refused (SQS
	// would be asked for no wait at all). Default 20s: an idle consumer
	// costs three requests a minute. A receive that comes back empty sooner
	// than half its wait (an emulator or a fake that does not long-poll) is
	// followed by a pause, growing to a second, so an idle consumer never
	// spins. Shutdown waits for the poll under way (at most ShutdownTimeout)
	// so that no message is taken by an abandoned poll.
	WaitTime time.Duration
	// VisibilityTimeout, when set, is sent with each receive. Zero uses the
	// queue's own, read once at start.
	VisibilityTimeout time.Duration
	// HeartbeatInterval is how often the visibility of messages still being
	// handled is checked and extended. Default a third of the visibility timeout.
	HeartbeatInterval time.Duration
	// AckInterval is how long a finished message may wait for others to
	// fill its delete batch. Default 50ms.
	AckInterval time.Duration
	// ShutdownTimeout is how long in-flight handlers (and the poll under
	// way) may run after the context of Run is done before their own
	// context is cancelled. A handler that does not return within a second
	// of that is abandoned: Run does not wait for it, and its message is
	// delivered again after its visibility timeout. Default 30s.
	ShutdownTimeout time.Duration
	// CallTimeout bounds each SQS request: deletes, visibility changes
	// (heartbeat extensions included) and the GetQueueAttributes at start
	// may take this long, a receive WaitTime plus this. The SDK's default
	// HTTP client has no timeout, so without one a stalled endpoint would
	// hold a request, and shutdown, for ever. It also bounds the final
	// flush of Run: Run returns at most ShutdownTimeout + 1s + CallTimeout
	// after its context is done. Default 15s: generous, so that a slow
	// but working endpoint (throttling and the SDK's retries, an emulator
	// on a loaded machine) does not turn deletes into redeliveries.
	CallTimeout time.Duration
	// Backoff, when set, decides when a message whose handler failed is
	// delivered again: its visibility timeout is set to Backoff(receiveCount)
	// instead of waiting out the queue's whole timeout. The redrive policy
	// still moves it to the dead-letter queue after maxReceiveCount receives.
	// See ExponentialBackoff. On FIFO queues the rest of the group's run
	// waits behind it either way.
	Backoff func(receiveCount int) time.Duration
	// Raw turns off SNS envelope unwrapping (for queues whose bodies may
	// legitimately look like SNS notifications).
	Raw    bool
	Logger *slog.Logger
}

func (c *ConsumerOptions) setDefaults() {
	if c.Workers == 0 {
		c.Workers = 10
	}
	if c.MaxMessages == 0 {
		c.MaxMessages = MaxBatchEntries
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = c.Workers + c.MaxMessages
	}
	if c.WaitTime == 0 {
		c.WaitTime = 20 * time.Second
	}
	if c.AckInterval == 0 {
		c.AckInterval = 50 * time.Millisecond
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	if c.CallTimeout == 0 {
		c.CallTimeout = 15 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports options that cannot work. NewConsumer calls it.
func (c ConsumerOptions) Validate() error {
	c.setDefaults()
	switch {
	case c.Workers < 1:
		return fmt.Errorf("%w: Workers %d < 1", ErrInvalidConfig, c.Workers)
	case c.MaxMessages < 1 || c.MaxMessages > MaxBatchEntries:
		return fmt.Errorf("%w: MaxMessages %d outside 1..10", ErrInvalidConfig, c.MaxMessages)
	case c.MaxInFlight < c.Workers:
		return fmt.Errorf("%w: MaxInFlight %d < Workers %d", ErrInvalidConfig, c.MaxInFlight, c.Workers)
	case c.WaitTime < time.Second || c.WaitTime > 20*time.Second:
		return fmt.Errorf("%w: WaitTime %v outside 1s..20s (0: the default, 20s)", ErrInvalidConfig, c.WaitTime)
	case c.VisibilityTimeout < 0 || c.VisibilityTimeout > 12*time.Hour:
		return fmt.Errorf("%w: VisibilityTimeout %v outside 0..12h", ErrInvalidConfig, c.VisibilityTimeout)
	case c.VisibilityTimeout > 0 && c.VisibilityTimeout < time.Second:
		return fmt.Errorf("%w: VisibilityTimeout %v: SQS counts whole seconds", ErrInvalidConfig, c.VisibilityTimeout)
	case c.HeartbeatInterval < 0:
		return fmt.Errorf("%w: HeartbeatInterval %v < 0", ErrInvalidConfig, c.HeartbeatInterval)
	case c.ShutdownTimeout < 0:
		return fmt.Errorf("%w: ShutdownTimeout %v < 0", ErrInvalidConfig, c.ShutdownTimeout)
	case c.CallTimeout < 0:
		return fmt.Errorf("%w: CallTimeout %v < 0", ErrInvalidConfig, c.CallTimeout)
	}
	return nil
}

// waitSeconds is WaitTime as SQS takes it: whole seconds, rounded up.
func (c ConsumerOptions) waitSeconds() int32 {
	return int32((c.WaitTime + time.Second - 1) / time.Second)
}

// consumerConfig is what a Consumer runs with: its queue and its options.
type consumerConfig struct {
	QueueURL string
	ConsumerOptions
}

func (c consumerConfig) validate() error {
	if _, err := ParseQueueURL(c.QueueURL); err != nil {
		return err
	}
	return c.ConsumerOptions.Validate()
}

// consumerOptions applies optFns to the defaults.
func consumerOptions(optFns []func(*ConsumerOptions)) ConsumerOptions {
	var o ConsumerOptions
	for _, fn := range optFns {
		fn(&o)
	}
	return o
}
