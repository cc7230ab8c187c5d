package main

import (
	"math"
	"math/bits"
	"time"

	"github.com/merchshop/merchshop/tests/load/internal/results"
)

// hist is a log-linear histogram of durations in nanoseconds: exact below
// 512 ns, then 256 buckets per power of two, so a reported value is at most
// 1/256 (0.4%) above the true one and never below it. Values above about
// 18 minutes land in the last bucket; min, max and the sum are exact.
// Recording is two shifts and an increment; the buckets are a fixed array.
type hist struct {
	counts        [histBuckets]uint64
	n             uint64
	sum, min, max uint64
}

const (
	histSubBits  = 9
	histExact    = 1 << histSubBits // values below are their own bucket
	histHalf     = histExact / 2    // buckets per power of two above
	histMaxShift = 31               // 2^(31+9) ns, about 18 minutes
	histBuckets  = histExact + histMaxShift*histHalf
	histTop      = 1<<(histMaxShift+histSubBits) - 1 // the largest value kept apart
)

func histIndex(v uint64) int {
	if v < histExact {
		return int(v)
	}
	if v > histTop {
		v = histTop
	}
	shift := bits.Len64(v) - histSubBits // >= 1
	top := v >> uint(shift)              // in [histHalf, histExact)
	return histExact + (shift-1)*histHalf + int(top-histHalf)
}

// histUpper is the largest value of bucket i.
func histUpper(i int) uint64 {
	if i < histExact {
		return uint64(i)
	}
	j := i - histExact
	shift := uint(j/histHalf + 1)
	top := uint64(j%histHalf + histHalf)
	return (top+1)<<shift - 1
}

func (h *hist) record(d time.Duration) {
	v := uint64(max(d, 0))
	h.counts[histIndex(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	h.max = max(h.max, v)
	h.sum += v
	h.n++
}

func (h *hist) merge(o *hist) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.sum += o.sum
	h.n += o.n
}

// quantile is the smallest recorded value (as its bucket's upper bound,
// capped at the maximum) at or below which at least q of the values lie.
func (h *hist) quantile(q float64) uint64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var cum uint64
	for i, c := range h.counts {
		cum += c
		if cum >= rank {
			return min(histUpper(i), h.max)
		}
	}
	return h.max
}

// ms converts to milliseconds in 0.01 ms steps, rounding up like the buckets.
func ms(ns uint64) float64 { return math.Ceil(float64(ns)/1e4) / 100 }

func (h *hist) latency() results.Latency {
	if h.n == 0 {
		return results.Latency{}
	}
	return results.Latency{
		Min: ms(h.min), Avg: ms(h.sum / h.n), P50: ms(h.quantile(0.5)), P90: ms(h.quantile(0.9)),
		P99: ms(h.quantile(0.99)), P999: ms(h.quantile(0.999)), Max: ms(h.max),
	}
}
