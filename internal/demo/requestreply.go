package demo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/courier-aws/courier/patterns"
)

type quoteRequest struct {
	SKU string `json:"sku"`
	Qty int    `json:"qty"`
}

type quote struct {
	SKU   string  `json:"sku"`
	Total float64 `json:"total"`
}

// requestResponse: a requester asks a pricing service for quotes over a
// request queue; each request carries its return address (the requester's
// reply queue) and a correlation id, and the reply comes back on it.
func requestResponse(ctx context.Context, env *Env) (Result, error) {
	url, _, err := env.Queue(ctx, "pricing-requests", QueueSpec{MaxReceiveCount: 3})
	if err != nil {
		return Result{}, err
	}
	prices := map[string]float64{"apple": 0.5, "pear": 0.75, "plum": 0.3}
	responder, err := patterns.NewResponder(env.SQS, url, func(o *patterns.ResponderOptions) {
		o.WaitTime = time.Second
		o.Logger = quiet
	})
	if err != nil {
		return Result{}, err
	}
	handle := patterns.HandleCall(func(ctx context.Context, q quoteRequest) (quote, error) {
		p, ok := prices[q.SKU]
		if !ok {
			return quote{}, fmt.Errorf("unknown sku %q", q.SKU)
		}
		return quote{SKU: q.SKU, Total: p * float64(q.Qty)}, nil
	})
	stopResponder := background(ctx, func(ctx context.Context) error {
		return responder.Run(ctx, func(ctx context.Context, req *patterns.Message) (*patterns.Message, error) {
			env.Trail.Add("pricing queue", "pricing service", "request cid="+short(req.CorrelationID))
			reply, err := handle(ctx, req)
			if err != nil {
				env.Trail.AddReply("pricing service", "reply queue", "error reply cid="+short(req.CorrelationID))
			} else {
				env.Trail.AddReply("pricing service", "reply queue", "reply cid="+short(req.CorrelationID))
			}
			return reply, err
		})
	})
	defer stopResponder()

	requester, err := patterns.NewRequester(env.SQS, func(o *patterns.RequesterOptions) { o.Logger = quiet })
	if err != nil {
		return Result{}, err
	}
	defer requester.Close(context.WithoutCancel(ctx))
	if err := requester.Start(ctx); err != nil {
		return Result{}, err
	}
	calls := 0
	for _, q := range []quoteRequest{{"apple", 4}, {"pear", 2}, {"plum", 10}} {
		start := time.Now()
		env.Trail.Add("requester", "pricing queue", fmt.Sprintf("quote %d %s", q.Qty, q.SKU))
		got, err := patterns.Call[quoteRequest, quote](ctx, requester, url, q)
		calls++
		if err != nil {
			return Result{Messages: calls * 2}, fmt.Errorf("quote %s: %w", q.SKU, err)
		}
		if want := prices[q.SKU] * float64(q.Qty); got.SKU != q.SKU || got.Total != want {
			return Result{Messages: calls * 2}, fmt.Errorf("quote for %s came back as %+v: crossed or wrong reply", q.SKU, got)
		}
		env.Trail.AddReply("reply queue", "requester", fmt.Sprintf("%s total %.2f in %s", q.SKU, got.Total, fmtDur(time.Since(start))))
	}
	// An error in the service comes back as a Go error, not a timeout.
	env.Trail.Add("requester", "pricing queue", "quote 1 kiwi")
	_, err = patterns.Call[quoteRequest, quote](ctx, requester, url, quoteRequest{"kiwi", 1})
	calls++
	var remote *patterns.RemoteError
	if !errors.As(err, &remote) {
		return Result{Messages: calls * 2}, fmt.Errorf("unknown sku: got %v, want a RemoteError", err)
	}
	env.Trail.AddReply("reply queue", "requester", "RemoteError: "+remote.Message)
	st := requester.Stats()
	return Result{Messages: calls * 2, Summary: fmt.Sprintf("%d calls over one reply queue (%s), each reply matched by correlation id; the unknown SKU came back as an error; late replies %d",
		calls, lastPart(requester.ReplyQueueURL()), st.LateReplies)}, nil
}

func short(id string) string {
	if len(id) > 6 {
		return id[:6]
	}
	return id
}

func lastPart(url string) string {
	for i := len(url) - 1; i >= 0; i-- {
		if url[i] == '/' {
			return url[i+1:]
		}
	}
	return url
}
