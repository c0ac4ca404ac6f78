package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/courier-aws/courier/patterns"
	"github.com/courier-aws/courier/patterns/filter"
)

// env is what a command sees of the world; tests give it buffers and a
// memaws or emulator configuration.
type env struct {
	in       io.Reader
	out, err io.Writer
	tty      bool // out is a terminal: progress bars instead of lines
	load     func(ctx context.Context, g globals) (aws.Config, error)
}

// globals are the flags every subcommand takes.
type globals struct {
	json                      bool
	profile, region, endpoint string
}

type command struct {
	name, args, summary string
	run                 func(ctx context.Context, e *env, c *cmdline) error
}

var commands = []command{
	{"send", "[flags] QUEUE|TOPIC [BODY|-]", "send a message to a queue or publish it to a topic (body from stdin when absent or -)", runSend},
	{"tail", "[flags] QUEUE|TOPIC", "print messages as they come, unwrapped (a topic through a temporary queue, removed on exit)", runTail},
	{"peek", "[flags] QUEUE", "show messages without consuming them", runPeek},
	{"dlq", "show|redrive [flags] QUEUE", "show a queue's dead-letter queue, or move its messages back", runDLQ},
	{"filter", "[flags] POLICY|@FILE [MESSAGE-FILE|-]...", "check an SNS filter policy, and match it against messages", runFilter},
	{"stats", "[flags] QUEUE...", "queue depth, in flight, delayed, dead letters", runStats},
}

const exitOK, exitFail, exitUsage = 0, 1, 2

// usageError is bad input: exit 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// exitError carries an exit status that is neither usage nor a plain
// failure message (filter's invalid policy: already printed).
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: courier COMMAND [flags] ARGS\n\ncommands:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nEvery command takes -json (output for programs), -profile, -region and\n-endpoint-url; the AWS configuration is the SDK's (AWS_PROFILE, AWS_REGION,\nAWS_ENDPOINT_URL). QUEUE is a queue URL, ARN or name; TOPIC a topic ARN.\nRun courier COMMAND -h for its flags. Exit status: 0 done, 1 error, 2 bad input.")
}

// run is the whole command: tests call it with their own env.
func run(ctx context.Context, args []string, e *env) int {
	if len(args) == 0 {
		usage(e.err)
		return exitUsage
	}
	name := args[0]
	if name == "-h" || name == "-help" || name == "--help" || name == "help" {
		usage(e.out)
		return exitOK
	}
	var cmd *command
	for i := range commands {
		if commands[i].name == name {
			cmd = &commands[i]
		}
	}
	if cmd == nil {
		fmt.Fprintf(e.err, "courier: unknown command %q\n\n", name)
		usage(e.err)
		return exitUsage
	}
	c := &cmdline{cmd: cmd, args: args[1:], env: e}
	err := cmd.run(ctx, e, c)
	var ue *usageError
	var ee *exitError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue):
		fmt.Fprintf(e.err, "courier %s: %v\nusage: courier %s %s (courier %s -h for flags)\n", name, err, name, cmd.args, name)
		return exitUsage
	case badInput(err):
		fmt.Fprintf(e.err, "courier %s: %v\n", name, err)
		return exitUsage
	case errors.Is(err, context.Canceled):
		fmt.Fprintf(e.err, "courier %s: interrupted\n", name)
		return exitFail
	default:
		fmt.Fprintf(e.err, "courier %s: %v\n", name, err)
		return exitFail
	}
}

// badInput: courier refused the input before asking AWS.
func badInput(err error) bool {
	for _, s := range []error{
		patterns.ErrInvalidQueueURL, patterns.ErrInvalidMessage, patterns.ErrMessageTooLarge, patterns.ErrTooManyAttributes,
		patterns.ErrInvalidGroupID, patterns.ErrInvalidConfig, patterns.ErrInvalidDestination, filter.ErrInvalidPolicy,
	} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// cmdline parses one subcommand's flags, interspersed with its arguments
// (people write the flags last as often as first).
type cmdline struct {
	cmd  *command
	args []string
	env  *env
	fs   *flag.FlagSet
	g    globals
}

func (c *cmdline) flags() *flag.FlagSet {
	if c.fs == nil {
		c.fs = flag.NewFlagSet("courier "+c.cmd.name, flag.ContinueOnError)
		c.fs.SetOutput(c.env.err)
		c.fs.BoolVar(&c.g.json, "json", false, "print JSON for programs instead of tables")
		c.fs.StringVar(&c.g.profile, "profile", "", "AWS profile (default: AWS_PROFILE)")
		c.fs.StringVar(&c.g.region, "region", "", "AWS region (default: AWS_REGION or the profile's)")
		c.fs.StringVar(&c.g.endpoint, "endpoint-url", "", "endpoint (default: AWS_ENDPOINT_URL; for an emulator)")
		c.fs.Usage = func() {
			fmt.Fprintf(c.env.err, "usage: courier %s %s\n\n%s\n\nflags:\n", c.cmd.name, c.cmd.args, c.cmd.summary)
			c.fs.PrintDefaults()
		}
	}
	return c.fs
}

// parse parses the flags and returns the positional arguments, between
// min and max of them (max < 0: no limit).
func (c *cmdline) parse(args []string, min, max int) ([]string, error) {
	fs := c.flags()
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &exitError{exitUsage} // the flag package has printed why
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	if len(pos) < min {
		return nil, usagef("missing arguments")
	}
	if max >= 0 && len(pos) > max {
		return nil, usagef("too many arguments: %s", strings.Join(pos[max:], " "))
	}
	return pos, nil
}

func (c *cmdline) config(ctx context.Context) (aws.Config, error) {
	cfg, err := c.env.load(ctx, c.g)
	if err != nil {
		return aws.Config{}, fmt.Errorf("AWS configuration: %w", err)
	}
	return cfg, nil
}

func (c *cmdline) sqs(ctx context.Context) (*sqs.Client, error) {
	cfg, err := c.config(ctx)
	if err != nil {
		return nil, err
	}
	return sqs.NewFromConfig(cfg), nil
}

func (c *cmdline) clients(ctx context.Context) (*sqs.Client, *sns.Client, error) {
	cfg, err := c.config(ctx)
	if err != nil {
		return nil, nil, err
	}
	return sqs.NewFromConfig(cfg), sns.NewFromConfig(cfg), nil
}

// isTopic tells a topic ARN from a queue.
func isTopic(s string) bool { return strings.HasPrefix(s, "arn:") && strings.Contains(s, ":sns:") }

// queueURL takes a queue URL, ARN or name.
func queueURL(ctx context.Context, client *sqs.Client, s string) (string, error) {
	switch {
	case strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://"):
		if _, err := patterns.ParseQueueURL(s); err != nil {
			return "", err
		}
		return s, nil
	case strings.HasPrefix(s, "arn:"):
		a, err := patterns.ParseARN(s, "sqs")
		if err != nil {
			return "", usagef("%q is neither a queue URL nor an SQS queue ARN", s)
		}
		out, err := client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(a.Name), QueueOwnerAWSAccountId: aws.String(a.Account)})
		if err != nil {
			return "", fmt.Errorf("queue %s: %w", s, err)
		}
		return aws.ToString(out.QueueUrl), nil
	case s == "" || strings.ContainsAny(s, "/: "):
		return "", usagef("%q is not a queue URL, ARN or name", s)
	}
	out, err := client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(s)})
	if err != nil {
		return "", fmt.Errorf("queue %s: %w", s, err)
	}
	return aws.ToString(out.QueueUrl), nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table prints rows under a header, aligned.
func table(w io.Writer, header []string, rows [][]string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// oneLine shortens s to n runes on one line, for tables.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func jsonLine(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}
