// Package perf holds courier's fault suite (make test) and its peer
// benchmarks (make bench): a module of its own, so that toxiproxy and
// gocloud.dev stay out of the library's dependencies.
package perf
