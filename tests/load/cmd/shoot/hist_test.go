package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestHistBuckets(t *testing.T) {
	// Every value lies in its bucket, and buckets follow one another.
	prev := -1
	for v := uint64(0); v < 1<<22; v += 1 + v/1000 {
		i := histIndex(v)
		if i < prev || i >= histBuckets {
			t.Fatalf("value %d: bucket %d after %d", v, i, prev)
		}
		prev = i
		if up := histUpper(i); up < v || (i > 0 && histUpper(i-1) >= v) {
			t.Fatalf("value %d: bucket %d spans (%d, %d]", v, i, histUpper(i-1), up)
		}
	}
	if histIndex(math.MaxUint64) != histBuckets-1 || histUpper(histBuckets-1) != histTop {
		t.Errorf("the last bucket: %d up to %d", histIndex(math.MaxUint64), histUpper(histBuckets-1))
	}
}

func TestHistQuantiles(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	var h hist
	vals := make([]time.Duration, 100_000)
	for i := range vals {
		// Log-normal around 4 ms: the shape of a latency distribution.
		vals[i] = time.Duration(math.Exp(rnd.NormFloat64()*1.2) * 4e6)
		h.record(vals[i])
	}
	slices.Sort(vals)
	for _, q := range []float64{0, 0.5, 0.9, 0.99, 0.999, 1} {
		exact := vals[max(int(math.Ceil(q*float64(len(vals))))-1, 0)]
		got := time.Duration(h.quantile(q))
		// Never below the value, at most a bucket (1/256) above.
		if got < exact || float64(got) > float64(exact)*(1+1.0/256)+1 {
			t.Errorf("q %.3f: %s, exact %s", q, got, exact)
		}
	}
	if time.Duration(h.max) != vals[len(vals)-1] || time.Duration(h.min) != vals[0] || h.n != uint64(len(vals)) {
		t.Errorf("min %d max %d n %d", h.min, h.max, h.n)
	}

	// Merging two halves is the whole.
	var a, b hist
	for i, v := range vals {
		if i%2 == 0 {
			a.record(v)
		} else {
			b.record(v)
		}
	}
	a.merge(&b)
	if a != h {
		t.Error("merged halves differ from the whole")
	}
	if l := h.latency(); l.P50 > l.P90 || l.P90 > l.P99 || l.P99 > l.P999 || l.P999 > l.Max || l.Min > l.P50 {
		t.Errorf("latency %+v out of order", l)
	}
	var empty hist
	if empty.quantile(0.99) != 0 || empty.latency().Max != 0 {
		t.Error("an empty histogram reports values")
	}
}

func TestHistSmallCounts(t *testing.T) {
	var h hist
	for _, ms := range []time.Duration{10, 20, 30, 40, 1000} {
		h.record(ms * time.Millisecond)
	}
	// p99 of five values is the largest; p50 the third.
	if l := h.latency(); l.P99 != 1000 || l.Max != 1000 || l.Min != 10 || l.Avg != 220 || l.P50 < 30 || l.P50 > 30.2 {
		t.Errorf("latency %+v", l)
	}
}
