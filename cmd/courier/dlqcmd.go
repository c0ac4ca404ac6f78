package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/courier-aws/courier/patterns/dlq"
)

func runDLQ(ctx context.Context, e *env, c *cmdline) error {
	if len(c.args) == 0 {
		return usagef("want show or redrive")
	}
	sub := c.args[0]
	c.args = c.args[1:]
	switch sub {
	case "show":
		return runDLQShow(ctx, e, c)
	case "redrive":
		return runDLQRedrive(ctx, e, c)
	case "-h", "-help", "--help":
		c.flags().Usage()
		return nil
	}
	return usagef("unknown dlq command %q (want show or redrive)", sub)
}

// deadLetters resolves QUEUE: a queue with a redrive policy names its
// dead-letter queue; a queue without one is taken as the dead-letter queue.
type deadLetters struct {
	URL     string   `json:"url"`
	Max     int      `json:"maxReceiveCount,omitempty"`
	Sources []string `json:"sources"`
}

func resolveDLQ(ctx context.Context, client *sqs.Client, arg string) (deadLetters, error) {
	url, err := queueURL(ctx, client, arg)
	if err != nil {
		return deadLetters{}, err
	}
	d, err := dlq.Find(ctx, client, url)
	switch {
	case err == nil:
		url = d.URL
	case errors.Is(err, dlq.ErrNoDeadLetterQueue):
	default:
		return deadLetters{}, err
	}
	sources, err := dlq.Sources(ctx, client, url)
	if err != nil {
		return deadLetters{}, err
	}
	if len(sources) == 0 {
		return deadLetters{}, fmt.Errorf("%s has no redrive policy and is no queue's dead-letter queue", arg)
	}
	if d.MaxReceiveCount == 0 && len(sources) > 0 {
		if s, err := dlq.Find(ctx, client, sources[0]); err == nil {
			d.MaxReceiveCount = s.MaxReceiveCount
		}
	}
	return deadLetters{URL: url, Max: d.MaxReceiveCount, Sources: sources}, nil
}

func runDLQShow(ctx context.Context, e *env, c *cmdline) error {
	fs := c.flags()
	n := fs.Int("n", 10, "how many dead letters to peek at (0: only counts)")
	pos, err := c.parse(c.args, 1, 1)
	if err != nil {
		return err
	}
	if *n < 0 {
		return usagef("-n %d", *n)
	}
	client, err := c.sqs(ctx)
	if err != nil {
		return err
	}
	d, err := resolveDLQ(ctx, client, pos[0])
	if err != nil {
		return err
	}
	st, err := queueStats(ctx, client, d.URL)
	if err != nil {
		return err
	}
	var msgs []dlq.Message
	if *n > 0 {
		if msgs, err = dlq.Peek(ctx, client, d.URL, func(o *dlq.PeekOptions) { o.Max = *n }); err != nil && len(msgs) == 0 {
			return err
		}
	}
	if c.g.json {
		return errors.Join(err, printJSON(e.out, map[string]any{
			"deadLetterQueue": d, "visible": st.Visible, "inFlight": st.InFlight, "delayed": st.Delayed, "messages": toPeekedJSON(msgs),
		}))
	}
	fmt.Fprintf(e.out, "dead-letter queue  %s\nsources            %s\nmaxReceiveCount    %d\nmessages           %d visible, %d in flight, %d delayed\n\n",
		d.URL, strings.Join(d.Sources, ", "), d.Max, st.Visible, st.InFlight, st.Delayed)
	if *n > 0 {
		printPeeked(e.out, msgs)
	}
	return err
}

func runDLQRedrive(ctx context.Context, e *env, c *cmdline) error {
	fs := c.flags()
	to := fs.String("to", "", "queue to move the messages to (default: each back to its source queue)")
	rate := fs.Int("rate", 0, "most messages a second (0: no limit of ours; a move task takes at most 500)")
	method := fs.String("method", "auto", "auto, move-task (SQS's StartMessageMoveTask) or copy (receive, send, delete)")
	pos, err := c.parse(c.args, 1, 1)
	if err != nil {
		return err
	}
	m, ok := map[string]dlq.Method{"auto": dlq.Auto, "move-task": dlq.MoveTask, "copy": dlq.Copy}[*method]
	if !ok {
		return usagef("-method %q: want auto, move-task or copy", *method)
	}
	if *rate < 0 || m == dlq.MoveTask && *rate > 500 {
		return usagef("-rate %d: want 0 to 500 with a move task, at least 0 otherwise", *rate)
	}
	client, err := c.sqs(ctx)
	if err != nil {
		return err
	}
	d, err := resolveDLQ(ctx, client, pos[0])
	if err != nil {
		return err
	}
	dest := *to
	if dest != "" {
		if dest, err = queueURL(ctx, client, dest); err != nil {
			return err
		}
	}
	var bar *progressBar
	if !c.g.json {
		bar = &progressBar{w: e.out, tty: e.tty}
		where := "their source queues"
		if dest != "" {
			where = dest
		}
		fmt.Fprintf(e.out, "redriving %s to %s\n", d.URL, where)
	}
	res, err := dlq.Redrive(ctx, client, d.URL, func(o *dlq.RedriveOptions) {
		o.Destination, o.Method, o.Rate = dest, m, *rate
		if bar != nil {
			o.Progress = bar.update
		}
	})
	if c.g.json {
		out := map[string]any{
			"deadLetterQueue": d.URL, "method": string(res.Method), "moved": res.Moved, "toMove": res.ToMove,
			"newDeduplicationIds": res.NewDeduplicationIDs, "returned": res.Returned,
		}
		if res.TaskHandle != "" {
			out["taskHandle"] = res.TaskHandle
		}
		if res.Fallback != "" {
			out["fallback"] = res.Fallback
		}
		if err != nil {
			out["error"] = err.Error()
		}
		return errors.Join(err, printJSON(e.out, out))
	}
	bar.finish()
	fmt.Fprintf(e.out, "moved %d of %d by %s\n", res.Moved, res.ToMove, res.Method)
	if res.Fallback != "" {
		fmt.Fprintf(e.out, "  (%s)\n", res.Fallback)
	}
	if res.NewDeduplicationIDs > 0 {
		fmt.Fprintf(e.out, "  %d FIFO messages got a new deduplication id (their first send is under five minutes old: SQS would have dropped them)\n", res.NewDeduplicationIDs)
	}
	if res.Returned > 0 {
		fmt.Fprintf(e.out, "  %d messages failed again and came back during the redrive; left in the dead-letter queue\n", res.Returned)
	}
	return err
}

// progressBar draws a redrive's progress: a bar redrawn in place on a
// terminal, a line per step (at most one a second) otherwise.
type progressBar struct {
	w     io.Writer
	tty   bool
	last  time.Time
	drawn bool
}

func (p *progressBar) update(pr dlq.Progress) {
	if p.tty {
		const width = 30
		total := max(pr.ToMove, pr.Moved, 1)
		filled := width * pr.Moved / total
		fmt.Fprintf(p.w, "\r[%s%s] %d/%d", strings.Repeat("#", filled), strings.Repeat(".", width-filled), pr.Moved, pr.ToMove)
		p.drawn = true
		return
	}
	if pr.Done || time.Since(p.last) >= time.Second {
		p.last = time.Now()
		fmt.Fprintf(p.w, "progress: moved %s of %s\n", strconv.Itoa(pr.Moved), strconv.Itoa(pr.ToMove))
	}
}

func (p *progressBar) finish() {
	if p != nil && p.drawn {
		fmt.Fprintln(p.w)
	}
}
