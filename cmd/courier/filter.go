package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/courier-aws/courier/patterns"
	"github.com/courier-aws/courier/patterns/filter"
)

// policyErrorJSON is filter.PolicyError for programs.
type policyErrorJSON struct {
	Path   []string `json:"path"`
	Rule   string   `json:"rule"`
	Limit  int      `json:"limit,omitempty"`
	Got    int      `json:"got,omitempty"`
	Detail string   `json:"detail"`
}

type matchJSON struct {
	Source string `json:"source"`
	Index  int    `json:"index"`
	Match  bool   `json:"match"`
}

func runFilter(ctx context.Context, e *env, c *cmdline) error {
	fs := c.flags()
	scope := fs.String("scope", "MessageAttributes", "MessageAttributes (or attributes) or MessageBody (or body)")
	pos, err := c.parse(c.args, 1, -1)
	if err != nil {
		return err
	}
	switch strings.ToLower(*scope) {
	case "attributes", "messageattributes":
		*scope = string(filter.Attributes)
	case "body", "messagebody":
		*scope = string(filter.Body)
	default:
		return usagef("-scope %q: want MessageAttributes or MessageBody", *scope)
	}
	text := pos[0]
	if name, ok := strings.CutPrefix(text, "@"); ok {
		b, err := os.ReadFile(name)
		if err != nil {
			return usagef("policy file: %v", err)
		}
		text = string(b)
	}
	p, err := filter.Parse(text, filter.Scope(*scope))
	var pe *filter.PolicyError
	if errors.As(err, &pe) {
		out := policyErrorJSON{Path: pe.Path, Rule: string(pe.Rule), Limit: pe.Limit, Got: pe.Got, Detail: pe.Detail}
		if out.Path == nil {
			out.Path = []string{}
		}
		if c.g.json {
			if err := printJSON(e.out, map[string]any{"valid": false, "error": out}); err != nil {
				return err
			}
		} else {
			fmt.Fprintf(e.out, "invalid filter policy\n  path    %s\n  rule    %s\n", strings.Join(out.Path, " > "), out.Rule)
			if out.Limit != 0 || out.Got != 0 {
				fmt.Fprintf(e.out, "  limit   %d\n  got     %d\n", out.Limit, out.Got)
			}
			fmt.Fprintf(e.out, "  detail  %s\n", out.Detail)
		}
		return &exitError{exitFail}
	}
	if err != nil {
		return err
	}
	var results []matchJSON
	for _, src := range pos[1:] {
		var data []byte
		if src == "-" {
			data, err = io.ReadAll(e.in)
		} else {
			data, err = os.ReadFile(src)
		}
		if err != nil {
			return usagef("messages: %v", err)
		}
		msgs, err := readMessages(data)
		if err != nil {
			return usagef("messages in %s: %v", src, err)
		}
		for i, m := range msgs {
			results = append(results, matchJSON{Source: src, Index: i, Match: p.Match(m.attrs, m.body)})
		}
	}
	if c.g.json {
		if results == nil {
			results = []matchJSON{}
		}
		return printJSON(e.out, map[string]any{"valid": true, "scope": string(p.Scope()), "policy": p.JSON(), "results": results})
	}
	fmt.Fprintf(e.out, "valid filter policy (%s)\n", p.Scope())
	if len(pos) > 1 {
		rows := make([][]string, 0, len(results))
		n := 0
		for _, r := range results {
			verdict := "no match"
			if r.Match {
				verdict, n = "match", n+1
			}
			rows = append(rows, []string{r.Source, strconv.Itoa(r.Index), verdict})
		}
		fmt.Fprintln(e.out)
		table(e.out, []string{"SOURCE", "#", "RESULT"}, rows)
		fmt.Fprintf(e.out, "\n%d of %d match\n", n, len(results))
	}
	return nil
}

type filterInput struct {
	attrs map[string]filter.Attr
	body  []byte
}

// readMessages reads one JSON value, an array of them, or a stream. Each
// is an SNS notification envelope, a message in the SDK's shape (an SQS
// message with Body, or an SNS Publish input with Message, and
// MessageAttributes of DataType and StringValue), or else a body.
func readMessages(data []byte) ([]filterInput, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var raws []json.RawMessage
	for {
		var v json.RawMessage
		if err := dec.Decode(&v); err == io.EOF {
			break
		} else if err != nil {
			return nil, err
		}
		if t := bytes.TrimSpace(v); len(t) > 0 && t[0] == '[' {
			var arr []json.RawMessage
			if err := json.Unmarshal(v, &arr); err != nil {
				return nil, err
			}
			raws = append(raws, arr...)
		} else {
			raws = append(raws, v)
		}
	}
	if len(raws) == 0 {
		return nil, errors.New("no JSON message")
	}
	out := make([]filterInput, 0, len(raws))
	for _, raw := range raws {
		out = append(out, readMessage(raw))
	}
	return out, nil
}

func readMessage(raw json.RawMessage) filterInput {
	var shape struct {
		Type              string          `json:"Type"`
		Message           *string         `json:"Message"`
		Body              *string         `json:"Body"`
		MessageAttributes json.RawMessage `json:"MessageAttributes"`
	}
	if json.Unmarshal(raw, &shape) != nil {
		return filterInput{body: raw} // a JSON value that is no object: the body itself
	}
	switch {
	case shape.Type == "Notification":
		if m, err := patterns.ParseSNSEnvelope(raw); err == nil {
			return filterInput{attrs: patterns.FilterAttrs(m.Attributes), body: m.Body}
		}
	case shape.Body != nil:
		var attrs map[string]sqstypes.MessageAttributeValue
		_ = json.Unmarshal(shape.MessageAttributes, &attrs)
		return filterInput{attrs: filter.AttrsFromSQS(attrs), body: []byte(*shape.Body)}
	case shape.Message != nil:
		var attrs map[string]snstypes.MessageAttributeValue
		_ = json.Unmarshal(shape.MessageAttributes, &attrs)
		return filterInput{attrs: filter.AttrsFromSNS(attrs), body: []byte(*shape.Message)}
	}
	return filterInput{attrs: map[string]filter.Attr{}, body: raw}
}
