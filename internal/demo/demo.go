package demo

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/courier-aws/courier/patterns"
)

// Env is what a pattern's demo gets: clients that count their requests,
// and a way to make queues and topics that are removed afterwards.
type Env struct {
	SQS      *sqs.Client
	SNS      *sns.Client
	Requests *patterns.RequestCounter
	Trail    *Trail
	Out      io.Writer // progress lines
	Endpoint string    // the emulator's endpoint; "" on AWS
	Backend  string    // COURIER_BACKEND: localstack, moto or aws
	res      *resources
}

// Result is what a pattern's demo reports.
type Result struct {
	Messages int    // messages the pattern moved
	Summary  string // one line: what was shown to work
}

// Pattern is one runnable demo.
type Pattern struct {
	Name  string // as given to PATTERN=
	Title string
	Run   func(ctx context.Context, env *Env) (Result, error)
}

// Patterns lists the catalogue, in the order the demo runs it.
func Patterns() []Pattern {
	return []Pattern{
		{Name: "one-way", Title: "One-way messaging", Run: oneWay},
		{Name: "competing-consumers", Title: "Point-to-point, competing consumers", Run: competingConsumers},
		{Name: "request-response", Title: "Request-response: return address and correlation id", Run: requestResponse},
		{Name: "pub-sub", Title: "Publish-subscribe: an HTTP subscriber next to a chained queue", Run: pubSub},
		{Name: "fan-out", Title: "Publish-subscribe with topic-queue chaining", Run: fanOut},
		{Name: "filter", Title: "Message filter: SNS subscription filter policies", Run: messageFilter},
		{Name: "recipient-list", Title: "Recipient list: destinations computed per message", Run: recipientList},
		{Name: "scatter-gather", Title: "Scatter-gather: price quotes from several suppliers", Run: scatterGather},
		{Name: "fifo", Title: "FIFO: message groups, ordering, deduplication", Run: fifo},
		{Name: "lambda-worker", Title: "Lambda worker: an SQS event source mapping feeds the worker function", Run: lambdaWorker},
	}
}

// Outcome is one row of the summary table.
type Outcome struct {
	Pattern  Pattern
	Result   Result
	Requests int64
	Took     time.Duration
	Err      error
}

// Options for Run.
type Options struct {
	Only   string // run just this pattern ("" or "all": every one)
	OutDir string // where the diagrams go (demo-out)
	Out    io.Writer
}

// Run runs the chosen patterns with clients made from cfg and returns one
// outcome per pattern; it fails if any pattern failed.
func Run(ctx context.Context, cfg aws.Config, opts Options) ([]Outcome, error) {
	var chosen []Pattern
	for _, p := range Patterns() {
		if opts.Only == "" || opts.Only == "all" || opts.Only == p.Name {
			chosen = append(chosen, p)
		}
	}
	if len(chosen) == 0 {
		var names []string
		for _, p := range Patterns() {
			names = append(names, p.Name)
		}
		return nil, fmt.Errorf("no pattern %q; choose one of: %s", opts.Only, strings.Join(names, ", "))
	}
	if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
		return nil, err
	}
	var outcomes []Outcome
	var failed []string
	for _, p := range chosen {
		rc := &patterns.RequestCounter{}
		env := &Env{
			SQS: sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.APIOptions = append(o.APIOptions, rc.Install) }),
			SNS: sns.NewFromConfig(cfg, func(o *sns.Options) { o.APIOptions = append(o.APIOptions, rc.Install) }),
			// Set-up requests are not the pattern's: counted apart.
			Requests: rc, Trail: NewTrail(), Out: opts.Out,
			Backend: os.Getenv("COURIER_BACKEND"),
		}
		if cfg.BaseEndpoint != nil {
			env.Endpoint = *cfg.BaseEndpoint
		}
		env.res = newResources(cfg)
		fmt.Fprintf(opts.Out, "\n▶ %s\n", p.Title)
		start := time.Now()
		pctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		res, err := p.Run(pctx, env)
		cancel()
		env.res.cleanup(context.WithoutCancel(ctx))
		o := Outcome{Pattern: p, Result: res, Requests: rc.Total(), Took: time.Since(start), Err: err}
		outcomes = append(outcomes, o)
		env.Trail.WriteTimeline(opts.Out, 14)
		if err != nil {
			fmt.Fprintf(opts.Out, "  ✗ %s FAILED: %v\n", p.Name, err)
			failed = append(failed, p.Name)
		} else {
			fmt.Fprintf(opts.Out, "  ✓ %s\n", res.Summary)
		}
		diagram := fmt.Sprintf("# %s\n\nObserved by `make demo` on %s: every arrow is a hop the demo saw.\n\n%s",
			p.Title, time.Now().UTC().Format(time.RFC3339), env.Trail.Mermaid(p.Title))
		if err := os.WriteFile(filepath.Join(opts.OutDir, p.Name+".md"), []byte(diagram), 0o644); err != nil {
			return outcomes, err
		}
	}
	WriteSummary(opts.Out, outcomes)
	if len(failed) > 0 {
		return outcomes, fmt.Errorf("patterns failed: %s", strings.Join(failed, ", "))
	}
	return outcomes, nil
}

// WriteSummary prints the summary table.
func WriteSummary(w io.Writer, outcomes []Outcome) {
	fmt.Fprintln(w, "\nSummary")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  pattern\tmessages\tAPI requests\treq/msg\ttime\tresult")
	for _, o := range outcomes {
		result := "ok"
		if o.Err != nil {
			result = "FAILED: " + o.Err.Error()
		}
		perMsg := "-"
		if o.Result.Messages > 0 {
			perMsg = fmt.Sprintf("%.2f", float64(o.Requests)/float64(o.Result.Messages))
		}
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%s\t%s\t%s\n", o.Pattern.Name, o.Result.Messages, o.Requests, perMsg, fmtDur(o.Took), result)
	}
	tw.Flush()
}
