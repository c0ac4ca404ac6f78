package patterns_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/courier-aws/courier/patterns"
)

// A RecipientList computes each message's destinations from rules
// written in Go and sends a copy to each, batched per destination. An
// unreachable destination is reported; the others still receive.
func ExampleRecipientList() {
	sqsClient, snsClient := exampleClients()
	warehouse, done1 := exampleQueue(sqsClient, "warehouse", nil)
	defer done1()
	billing, done2 := exampleQueue(sqsClient, "billing", nil)
	defer done2()
	ctx := context.Background()

	rl, err := patterns.NewRecipientList(sqsClient, snsClient, func(o *patterns.RecipientListOptions) {
		o.Route = func(m *patterns.Message) []patterns.Destination {
			return []patterns.Destination{patterns.Destination(billing)}
		}
		o.Rules = []patterns.RecipientRule{{
			Name:  "physical goods",
			Match: func(m *patterns.Message) bool { return m.Attr("kind") == "physical" },
			To:    []patterns.Destination{patterns.Destination(warehouse)},
		}}
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	book := &patterns.Message{Body: []byte("order 1: a book")}
	book.SetAttr("kind", "physical")
	ebook := &patterns.Message{Body: []byte("order 2: an e-book")}
	ebook.SetAttr("kind", "digital")
	deliveries, err := rl.Send(ctx, book, ebook)
	fmt.Println("copies sent:", len(deliveries), err)
	fmt.Println("warehouse:", bodies(sqsClient, warehouse))
	fmt.Println("billing:", bodies(sqsClient, billing))

	// A queue that does not exist: reported with the messages it missed.
	gone := patterns.Destination(warehouse[:strings.LastIndex(warehouse, "/")+1] + "no-such-queue")
	_, err = rl.SendTo(ctx, []patterns.Destination{patterns.Destination(billing), gone}, book)
	var re *patterns.RecipientError
	if errors.As(err, &re) {
		fmt.Println("failed:", len(re.Destinations()), "not found:", errors.Is(err, patterns.ErrNotFound))
	}
	fmt.Println("billing:", bodies(sqsClient, billing))
	// Output:
	// copies sent: 3 <nil>
	// warehouse: [order 1: a book]
	// billing: [order 1: a book order 2: an e-book]
	// failed: 1 not found: true
	// billing: [order 1: a book]
}

// bodies receives and deletes what a queue holds, sorted.
func bodies(client *sqs.Client, url string) []string {
	var out []string
	for {
		r, err := client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil || len(r.Messages) == 0 {
			sort.Strings(out)
			return out
		}
		for _, m := range r.Messages {
			out = append(out, aws.ToString(m.Body))
			_, _ = client.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle})
		}
	}
}
