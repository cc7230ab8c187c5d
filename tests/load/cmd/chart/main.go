// Command chart draws docs/benchmarks-latency.png from the runs CSV: p50 and
// p99 latency against achieved throughput for each profile, with the SLI's
// 50 ms line, on a logarithmic latency axis.
package main

import (
	"flag"
	"fmt"
	"image/color"
	"os"
	"sort"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/merchshop/merchshop/tests/load/internal/results"
)

func main() {
	in := flag.String("in", "docs/benchmarks-data.csv", "runs CSV")
	out := flag.String("out", "docs/benchmarks-latency.png", "PNG to write")
	sli := flag.Float64("sli", 50, "the p99 objective in milliseconds")
	flag.Parse()
	if err := run(*in, *out, *sli); err != nil {
		fmt.Fprintln(os.Stderr, "chart:", err)
		os.Exit(1)
	}
}

var colors = map[string]color.RGBA{
	"mixed": {R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	"info":  {R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	"auth":  {R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
}

func run(in, out string, sli float64) error {
	rows, err := results.ReadCSV(in)
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		return fmt.Errorf("%s: no runs", in)
	}
	byProfile := map[string][]results.Row{}
	for _, r := range rows {
		if r.AchievedRPS > 0 && r.P99 > 0 {
			byProfile[r.Profile] = append(byProfile[r.Profile], r)
		}
	}
	p := plot.New()
	p.Title.Text = "Latency against throughput (2 cores, everything co-located)"
	p.X.Label.Text = "achieved throughput, requests/s"
	p.Y.Label.Text = "latency, ms (log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = latencyTicks{}
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())

	maxX, minY, maxY := 0.0, sli, sli
	var profiles []string
	for name := range byProfile {
		profiles = append(profiles, name)
	}
	sort.Strings(profiles)
	for _, name := range profiles {
		rs := byProfile[name]
		sort.Slice(rs, func(i, j int) bool { return rs[i].TargetRPS < rs[j].TargetRPS })
		p99 := make(plotter.XYs, len(rs))
		p50 := make(plotter.XYs, len(rs))
		for i, r := range rs {
			p99[i] = plotter.XY{X: r.AchievedRPS, Y: r.P99}
			p50[i] = plotter.XY{X: r.AchievedRPS, Y: max(r.P50, 0.1)}
			maxX = max(maxX, r.AchievedRPS)
			minY, maxY = min(minY, p50[i].Y), max(maxY, r.P99)
		}
		c, ok := colors[name]
		if !ok {
			c = color.RGBA{A: 0xff}
		}
		l99, s99, err := plotter.NewLinePoints(p99)
		if err != nil {
			return err
		}
		l99.Color, s99.Color, l99.Width = c, c, vg.Points(1.5)
		s99.Shape = draw.CircleGlyph{}
		l50, s50, err := plotter.NewLinePoints(p50)
		if err != nil {
			return err
		}
		l50.Color, s50.Color = c, c
		l50.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		s50.Shape = draw.TriangleGlyph{}
		p.Add(l99, s99, l50, s50)
		p.Legend.Add(name+" p99", l99, s99)
		p.Legend.Add(name+" p50", l50, s50)
	}
	line, err := plotter.NewLine(plotter.XYs{{X: 0, Y: sli}, {X: maxX * 1.05, Y: sli}})
	if err != nil {
		return err
	}
	line.Color = color.RGBA{R: 0x80, G: 0x80, B: 0x80, A: 0xff}
	line.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
	p.Add(line)
	p.Legend.Add(fmt.Sprintf("SLI: p99 %.0f ms", sli), line)
	p.X.Min, p.X.Max = 0, maxX*1.05
	p.Y.Min, p.Y.Max = minY*0.8, maxY*1.5
	return p.Save(8*vg.Inch, 5*vg.Inch, out)
}

// latencyTicks labels a logarithmic latency axis at 1-2-5 steps.
type latencyTicks struct{}

// Ticks implements plot.Ticker.
func (latencyTicks) Ticks(lo, hi float64) []plot.Tick {
	var ticks []plot.Tick
	for decade := 0.01; decade <= hi*10; decade *= 10 {
		for _, m := range []float64{1, 2, 5} {
			v := m * decade
			if v < lo || v > hi {
				continue
			}
			ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'g', -1, 64)})
		}
	}
	return ticks
}
