package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/courier-aws/courier/patterns"
)

// attrFlags collects -attr name=value (String) or name:Type=value.
type attrFlags map[string]patterns.Attribute

func (a attrFlags) String() string { return "" }

func (a attrFlags) Set(s string) error {
	key, value, ok := strings.Cut(s, "=")
	if !ok || key == "" {
		return fmt.Errorf("want name=value or name:Type=value, got %q", s)
	}
	name, typ, typed := strings.Cut(key, ":")
	if !typed {
		typ = patterns.TypeString
	}
	if strings.HasPrefix(typ, patterns.TypeBinary) {
		a[name] = patterns.Attribute{DataType: typ, Binary: []byte(value)}
	} else {
		a[name] = patterns.Attribute{DataType: typ, Value: value}
	}
	return nil
}

func runSend(ctx context.Context, e *env, c *cmdline) error {
	attrs := attrFlags{}
	fs := c.flags()
	fs.Var(attrs, "attr", "message attribute `name=value` (String) or name:Number=42; repeat for more")
	group := fs.String("group", "", "message group id (FIFO; the tenant of a fair queue)")
	dedup := fs.String("dedup", "", "deduplication id (FIFO)")
	delay := fs.Duration("delay", 0, "delivery delay (standard queues, up to 15m)")
	pos, err := c.parse(c.args, 1, 2)
	if err != nil {
		return err
	}
	var body []byte
	if len(pos) == 2 && pos[1] != "-" {
		body = []byte(pos[1])
	} else if body, err = io.ReadAll(e.in); err != nil {
		return fmt.Errorf("reading the body from stdin: %w", err)
	}
	m := &patterns.Message{Body: body, GroupID: *group, DeduplicationID: *dedup, Delay: *delay}
	if len(attrs) > 0 {
		m.Attributes = attrs
	}
	sqsClient, snsClient, err := c.clients(ctx)
	if err != nil {
		return err
	}
	dest := pos[0]
	if isTopic(dest) {
		p, err := patterns.NewPublisher(snsClient, dest)
		if err != nil {
			return err
		}
		if err := p.Publish(ctx, m); err != nil {
			return err
		}
	} else {
		if dest, err = queueURL(ctx, sqsClient, dest); err != nil {
			return err
		}
		p, err := patterns.NewProducer(sqsClient, dest)
		if err != nil {
			return err
		}
		if err := p.Send(ctx, m); err != nil {
			return err
		}
	}
	if c.g.json {
		return printJSON(e.out, map[string]string{"destination": dest, "messageId": m.ID, "sequenceNumber": m.SequenceNumber})
	}
	seq := ""
	if m.SequenceNumber != "" {
		seq = " (sequence " + m.SequenceNumber + ")"
	}
	fmt.Fprintf(e.out, "sent %s%s to %s\n", m.ID, seq, dest)
	return nil
}

// sentAge renders how long ago t was, for tables.
func sentAge(t time.Time, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return now.Sub(t).Round(time.Second).String()
}
