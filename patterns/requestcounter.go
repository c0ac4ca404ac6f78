package patterns

import (
	"context"
	"sync"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// billingChunk is the payload size SQS and SNS bill as one request.
const billingChunk = 64 << 10

// RequestCounter counts the API requests an SDK client sends, per
// operation, and the requests AWS bills (one per started 64 KiB of payload).
// Every attempt counts, retries included, since every attempt is billed.
// Install it on a client with its APIOptions:
//
//	var rc patterns.RequestCounter
//	client := sqs.NewFromConfig(cfg, func(o *sqs.Options) {
//		o.APIOptions = append(o.APIOptions, rc.Install)
//	})
//
// The zero value is ready to use and safe for concurrent use.
type RequestCounter struct {
	mu     sync.Mutex
	byOp   map[string]int64
	total  int64
	billed int64
}

// Install adds the counter to an SDK middleware stack. It sits in the
// finalize step after the retry middleware, so that it sees each attempt.
func (c *RequestCounter) Install(stack *middleware.Stack) error {
	return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("courier.RequestCounter",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			size := int64(0)
			if req, ok := in.Request.(*smithyhttp.Request); ok {
				size = req.ContentLength
				if size <= 0 {
					if n, ok, _ := req.StreamLength(); ok {
						size = n
					}
				}
			}
			c.add(awsmiddleware.GetServiceID(ctx)+"."+awsmiddleware.GetOperationName(ctx), size)
			return next.HandleFinalize(ctx, in)
		}), middleware.After)
}

func (c *RequestCounter) add(op string, size int64) {
	billed := (size + billingChunk - 1) / billingChunk
	if billed < 1 {
		billed = 1
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byOp == nil {
		c.byOp = make(map[string]int64)
	}
	c.byOp[op]++
	c.total++
	c.billed += billed
}

// Total returns the number of requests sent.
func (c *RequestCounter) Total() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

// Billed returns the number of billed requests (64 KiB chunks).
func (c *RequestCounter) Billed() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.billed
}

// Get returns the count for one operation, e.g. "SQS.SendMessageBatch".
func (c *RequestCounter) Get(op string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byOp[op]
}

// Counts returns a copy of the counts per operation.
func (c *RequestCounter) Counts() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, len(c.byOp))
	for k, v := range c.byOp {
		out[k] = v
	}
	return out
}

// Operations returns the operations seen, sorted.
func (c *RequestCounter) Operations() []string { return sortedKeys(c.Counts()) }

// Reset sets every count to zero.
func (c *RequestCounter) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.byOp, c.total, c.billed = nil, 0, 0
}
