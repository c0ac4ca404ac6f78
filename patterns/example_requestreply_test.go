package patterns_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/courier-aws/courier/patterns"
)

// A Responder answers requests; a Requester sends them and waits for the
// replies on its own reply queue, which it creates on first use and
// deletes on Close.
func ExampleRequester() {
	sqsClient, _ := exampleClients()
	requestQueue, done := exampleQueue(sqsClient, "requests", nil)
	defer done()
	ctx := context.Background()

	// The responder, usually another service. With no allowlist it
	// answers reply queues named courier-reply-* in its own account.
	responder, err := patterns.NewResponder(sqsClient, requestQueue, func(o *patterns.ResponderOptions) { o.WaitTime = time.Second })
	if err != nil {
		fmt.Println(err)
		return
	}
	runCtx, stop := context.WithCancel(ctx)
	stopped := make(chan error, 1)
	go func() {
		stopped <- responder.Run(runCtx, func(ctx context.Context, req *patterns.Message) (*patterns.Message, error) {
			if len(req.Body) > 10 {
				return nil, errors.New("too long to shout")
			}
			return &patterns.Message{Body: []byte(strings.ToUpper(string(req.Body)))}, nil
		})
	}()
	defer func() { stop(); <-stopped }()

	requester, err := patterns.NewRequester(sqsClient)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer requester.Close(ctx)

	reqCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	reply, err := requester.Request(reqCtx, requestQueue, &patterns.Message{Body: []byte("hello")})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(reply.Body))

	_, err = requester.Request(reqCtx, requestQueue, &patterns.Message{Body: []byte("hello, world")})
	var remote *patterns.RemoteError
	if errors.As(err, &remote) {
		fmt.Println("responder said:", remote.Message)
	}
	// Output:
	// HELLO
	// responder said: too long to shout
}

type priceQuery struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

type priceQuote struct {
	Cents int `json:"cents"`
}

// Call and HandleCall are the typed layer: JSON bodies by default, any
// Codec by option.
func ExampleCall() {
	sqsClient, _ := exampleClients()
	pricesQueue, done := exampleQueue(sqsClient, "prices", nil)
	defer done()
	ctx := context.Background()

	responder, _ := patterns.NewResponder(sqsClient, pricesQueue, func(o *patterns.ResponderOptions) { o.WaitTime = time.Second })
	runCtx, stop := context.WithCancel(ctx)
	stopped := make(chan error, 1)
	go func() {
		stopped <- responder.Run(runCtx, patterns.HandleCall(func(ctx context.Context, q priceQuery) (priceQuote, error) {
			if q.SKU != "apple" {
				return priceQuote{}, fmt.Errorf("unknown sku %q", q.SKU)
			}
			return priceQuote{Cents: 45 * q.Quantity}, nil
		}))
	}()
	defer func() { stop(); <-stopped }()

	requester, _ := patterns.NewRequester(sqsClient, func(o *patterns.RequesterOptions) { o.Timeout = 10 * time.Second })
	defer requester.Close(ctx)

	quote, err := patterns.Call[priceQuery, priceQuote](ctx, requester, pricesQueue, priceQuery{SKU: "apple", Quantity: 3})
	fmt.Println(quote.Cents, err)
	_, err = patterns.Call[priceQuery, priceQuote](ctx, requester, pricesQueue, priceQuery{SKU: "pear", Quantity: 1})
	fmt.Println(err != nil, strings.Contains(err.Error(), `unknown sku "pear"`))
	// Output:
	// 135 <nil>
	// true true
}

// In AWS Lambda, make the Requester once per execution environment (in
// main, before lambda.Start) and use it in every invocation: the reply
// queue is created by the first invocation and reused by the rest. Do not
// Close it; Lambda retires environments without warning, and Sweep, on a
// schedule, deletes the queues they leave.
func ExampleRequester_lambda() {
	sqsClient, _ := exampleClients()
	ordersQueue, done := exampleQueue(sqsClient, "orders", nil)
	defer done()
	responder, _ := patterns.NewResponder(sqsClient, ordersQueue, func(o *patterns.ResponderOptions) { o.WaitTime = time.Second })
	runCtx, stop := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() {
		stopped <- responder.Run(runCtx, func(ctx context.Context, req *patterns.Message) (*patterns.Message, error) {
			return &patterns.Message{Body: []byte("accepted " + string(req.Body))}, nil
		})
	}()
	defer func() { stop(); <-stopped }()

	// func main() {
	//	cfg, _ := config.LoadDefaultConfig(context.Background())
	lambdaRequester, _ = patterns.NewRequester(sqsClient)
	lambdaOrdersQueue = ordersQueue
	//	lambda.Start(handleOrder)
	// }
	for _, order := range []string{"order-1", "order-2", "order-3"} { // three invocations
		answer, err := handleOrder(context.Background(), order)
		fmt.Println(answer, err)
	}
	fmt.Println("reply queues created:", lambdaRequester.Stats().QueuesCreated)
	_ = lambdaRequester.Close(context.Background()) // only because this example ends here
	// Output:
	// accepted order-1 <nil>
	// accepted order-2 <nil>
	// accepted order-3 <nil>
	// reply queues created: 1
}

// One per execution environment, shared by every invocation.
var (
	lambdaRequester   *patterns.Requester
	lambdaOrdersQueue string
)

// handleOrder is the Lambda handler. Its context carries the invocation's
// deadline, which bounds the request.
func handleOrder(ctx context.Context, order string) (string, error) {
	reply, err := lambdaRequester.Request(ctx, lambdaOrdersQueue, &patterns.Message{Body: []byte(order)})
	if err != nil {
		return "", err
	}
	return string(reply.Body), nil
}

// Sweep deletes the reply queues of requesters that died without Close;
// live ones keep their heartbeat fresh and are left alone.
func ExampleSweep() {
	sqsClient, _ := exampleClients()
	ctx := context.Background()
	prefix := "example-sweep-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-" // default: courier-reply-
	live, _ := patterns.NewRequester(sqsClient, func(o *patterns.RequesterOptions) { o.ReplyQueuePrefix = prefix })
	_ = live.Start(ctx)
	defer live.Close(ctx)

	// Run this on a schedule, with idle well above the requesters'
	// HeartbeatInterval (5 minutes by default).
	deleted, err := patterns.Sweep(ctx, sqsClient, prefix, time.Hour)
	fmt.Println(len(deleted), err)
	// Output:
	// 0 <nil>
}

// A Responder answers only return addresses its allowlist names: here
// one reply queue prefix. A request whose return address is elsewhere is
// not answered (it is logged, counted in Stats().Rejected and left to the
// request queue's dead-letter queue).
// The Responder's Handler runs the same logic without a consumer, as the
// handler of a Lambda function on the request queue.
func ExampleResponder() {
	sqsClient, _ := exampleClients()
	requests, done := exampleQueue(sqsClient, "rates", nil)
	defer done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	quiet := slog.New(slog.DiscardHandler)

	responder, err := patterns.NewResponder(sqsClient, requests, func(o *patterns.ResponderOptions) {
		o.WaitTime = time.Second
		o.Logger = quiet
		o.AllowNames = []string{"courier-reply-rates-*"}
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	go responder.Run(ctx, func(_ context.Context, req *patterns.Message) (*patterns.Message, error) {
		return &patterns.Message{Body: []byte("1 EUR = 1.08 USD")}, nil
	})

	client, _ := patterns.NewRequester(sqsClient, func(o *patterns.RequesterOptions) {
		o.ReplyQueuePrefix = "courier-reply-rates-"
		o.Logger = quiet
	})
	defer client.Close(context.Background())
	reqCtx, stop := context.WithTimeout(ctx, 10*time.Second)
	defer stop()
	reply, err := client.Request(reqCtx, requests, &patterns.Message{Body: []byte("EUR/USD")})
	fmt.Println(string(reply.Body), err)

	other, _ := patterns.NewRequester(sqsClient, func(o *patterns.RequesterOptions) {
		o.ReplyQueuePrefix = "courier-reply-other-"
		o.Logger = quiet
	})
	defer other.Close(context.Background())
	shortCtx, stop2 := context.WithTimeout(ctx, 3*time.Second)
	defer stop2()
	_, err = other.Request(shortCtx, requests, &patterns.Message{Body: []byte("EUR/USD")})
	fmt.Println("outside the allowlist:", errors.Is(err, patterns.ErrTimeout), "rejected:", responder.Stats().Rejected)
	// Output:
	// 1 EUR = 1.08 USD <nil>
	// outside the allowlist: true rejected: 1
}
