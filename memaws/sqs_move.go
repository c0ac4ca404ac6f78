package memaws

import (
	"sort"
	"strconv"
)

// moveTask is a StartMessageMoveTask. memaws moves every message that is
// not in flight when the task starts, in the call (AWS moves them
// asynchronously at up to MaxNumberOfMessagesPerSecond): the task is
// COMPLETED when StartMessageMoveTask returns.
type moveTask struct {
	handle, source, dest string
	rate                 int
	moved, toMove        int
	started              int64
	status               string
}

func (s *Server) startMoveTaskLocked(in *sqsInput) (any, *APIError) {
	if in.SourceArn == "" {
		return nil, errMissing("SourceArn")
	}
	src := s.queueByARNLocked(in.SourceArn)
	if src == nil {
		return nil, errCode("ResourceNotFoundException", "The resource that you specified for the SourceArn parameter doesn't exist.")
	}
	isDLQ := false
	for _, q := range s.sqs.queues {
		isDLQ = isDLQ || q.cfg.redrive != nil && q.cfg.redrive.DeadLetterTargetArn == src.arn
	}
	if !isDLQ {
		return nil, errInvalid("Source queue must be configured as a Dead Letter Queue.")
	}
	for _, t := range s.sqs.moves {
		if t.source == src.arn && t.status == "RUNNING" {
			return nil, errInvalid("There is already a task running. Only one active task is allowed for a source queue arn at a given time.")
		}
	}
	var dst *queue
	if in.DestinationArn != "" {
		if dst = s.queueByARNLocked(in.DestinationArn); dst == nil {
			return nil, errCode("ResourceNotFoundException", "The resource that you specified for the DestinationArn parameter doesn't exist.")
		}
		if dst.fifo != src.fifo {
			return nil, errInvalid("The destination queue must be the same type as the source queue.")
		}
	}
	rate, e := intParam(in.MaxNumberOfMessagesPerSecond, "MaxNumberOfMessagesPerSecond", 0, 1, 500)
	if e != nil {
		return nil, e
	}
	now := s.nowLocked()
	t := &moveTask{
		handle: "memaws-move-" + strconv.FormatUint(s.nextID(), 10),
		source: src.arn, dest: in.DestinationArn, rate: rate, started: now.UnixMilli(), status: "COMPLETED",
	}
	s.expireLocked(src, now)
	for _, m := range append([]*message(nil), src.msgs...) {
		if m.deleted || m.inflight(now) {
			continue
		}
		to := dst
		if to == nil {
			to = s.queueByARNLocked(m.dlqSource)
		}
		t.toMove++
		if to == nil || to == src {
			continue
		}
		s.moveLocked(src, m, to, now, false)
		t.moved++
	}
	s.compactLocked(src)
	s.sqs.moves[t.handle] = t
	return map[string]string{"TaskHandle": t.handle}, nil
}

func (s *Server) listMoveTasksLocked(in *sqsInput) (any, *APIError) {
	if in.SourceArn == "" {
		return nil, errMissing("SourceArn")
	}
	if s.queueByARNLocked(in.SourceArn) == nil {
		return nil, errCode("ResourceNotFoundException", "The resource that you specified for the SourceArn parameter doesn't exist.")
	}
	max, e := intParam(in.MaxResults, "MaxResults", 1, 1, 10)
	if e != nil {
		return nil, e
	}
	var tasks []*moveTask
	for _, t := range s.sqs.moves {
		if t.source == in.SourceArn {
			tasks = append(tasks, t)
		}
	}
	sort.Slice(tasks, func(i, j int) bool {
		return tasks[i].started > tasks[j].started || tasks[i].started == tasks[j].started && tasks[i].handle > tasks[j].handle
	})
	results := []map[string]any{}
	for _, t := range tasks[:min(max, len(tasks))] {
		r := map[string]any{
			"Status": t.status, "SourceArn": t.source,
			"ApproximateNumberOfMessagesMoved": t.moved, "ApproximateNumberOfMessagesToMove": t.toMove,
			"StartedTimestamp": t.started,
		}
		if t.dest != "" {
			r["DestinationArn"] = t.dest
		}
		if t.rate > 0 {
			r["MaxNumberOfMessagesPerSecond"] = t.rate
		}
		if t.status == "RUNNING" {
			r["TaskHandle"] = t.handle
		}
		results = append(results, r)
	}
	return map[string]any{"Results": results}, nil
}

func (s *Server) cancelMoveTaskLocked(in *sqsInput) (any, *APIError) {
	t := s.sqs.moves[in.TaskHandle]
	if t == nil || t.status != "RUNNING" {
		return nil, errCode("ResourceNotFoundException", "The task handle %q does not name a running task.", in.TaskHandle)
	}
	t.status = "CANCELLED"
	return map[string]int{"ApproximateNumberOfMessagesMoved": t.moved}, nil
}
