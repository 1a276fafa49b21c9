package bench

import (
	"fmt"
	"image/color"
	"math"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// WriteSimPlots draws the runs with gonum.org/v1/plot, each as SVG and
// PNG in dir: egress.* (server egress against viewers on log axes, with a
// plain CDN's n·r, the design's claim and the fluid bound),
// latency-cdf-N.* (latency CDFs by depth, for each audience size N) and
// depths-N.* (the depth histogram).
func WriteSimPlots(dir string, results []SimResult) error {
	if len(results) == 0 {
		return nil
	}
	p, err := egressPlot(results)
	if err != nil {
		return err
	}
	if err := save(p, dir, "egress"); err != nil {
		return err
	}
	for _, r := range results {
		p, err := latencyPlot(r)
		if err != nil {
			return err
		}
		if err := save(p, dir, fmt.Sprintf("latency-cdf-%d", r.Viewers)); err != nil {
			return err
		}
		if p, err = depthPlot(r); err != nil {
			return err
		}
		if err := save(p, dir, fmt.Sprintf("depths-%d", r.Viewers)); err != nil {
			return err
		}
	}
	return nil
}

func save(p *plot.Plot, dir, name string) error {
	for _, ext := range []string{".svg", ".png"} {
		if err := p.Save(16*vg.Centimeter, 11*vg.Centimeter, filepath.Join(dir, name+ext)); err != nil {
			return fmt.Errorf("bench: plot %s: %w", name+ext, err)
		}
	}
	return nil
}

func egressPlot(results []SimResult) (*plot.Plot, error) {
	r0 := results[0]
	p := newPlot(fmt.Sprintf("Server egress: %s, %.1f Mbit/s", r0.Scenario, r0.BitrateMbps), "viewers", "Mbit/s")
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker, p.Y.Tick.Marker = plot.LogTicks{Prec: -1}, plot.LogTicks{Prec: -1}
	p.Legend.Top, p.Legend.Left = true, true
	var cdn, claim, bound, measured plotter.XYs
	for _, r := range results {
		x := float64(r.Viewers)
		cdn = append(cdn, plotter.XY{X: x, Y: math.Max(r.CDNMbps, 1e-3)})
		bound = append(bound, plotter.XY{X: x, Y: math.Max(r.FluidBoundMbps, 1e-3)})
		measured = append(measured, plotter.XY{X: x, Y: math.Max(r.ServerEgressMbps, 1e-3)})
	}
	// The claim as the design's table gives it, over the runs' range.
	lo, hi := float64(results[0].Viewers), float64(results[len(results)-1].Viewers)
	for _, c := range designClaim {
		if c.n >= lo/1.01 && c.n <= hi*1.01 {
			claim = append(claim, plotter.XY{X: c.n, Y: c.mbps * r0.BitrateMbps / 4})
		}
	}
	add := func(name string, xys plotter.XYs, i int, dashed, points bool) error {
		if len(xys) == 0 {
			return nil
		}
		l, s, err := plotter.NewLinePoints(xys)
		if err != nil {
			return err
		}
		l.Color, s.Color = plotutil.Color(i), plotutil.Color(i)
		s.Shape = plotutil.Shape(i)
		if dashed {
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		}
		p.Add(l)
		if points {
			p.Add(s)
		}
		p.Legend.Add(name, l)
		return nil
	}
	for i, e := range []struct {
		name           string
		xys            plotter.XYs
		dashed, points bool
	}{
		{"plain CDN n·r", cdn, true, false},
		{"design's claim", claim, true, true},
		{"fluid bound", bound, true, false},
		{"measured", measured, false, true},
	} {
		if err := add(e.name, e.xys, i, e.dashed, e.points); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// newPlot is an empty plot with its title and axis labels.
func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text, p.X.Label.Text, p.Y.Label.Text = title, x, y
	return p
}

func latencyPlot(r SimResult) (*plot.Plot, error) {
	p := newPlot(fmt.Sprintf("Delivery latency by depth: %s, %d viewers", r.Scenario, r.Viewers),
		"ingest finished → held verified (ms)", "share of chunks")
	p.Y.Min, p.Y.Max = 0, 1
	p.Legend.Top = false
	p.Legend.Left = false
	for i, c := range r.LatencyCDF {
		xys := make(plotter.XYs, len(c.Ms))
		for q, v := range c.Ms {
			xys[q] = plotter.XY{X: v, Y: float64(q) / 100}
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return nil, err
		}
		l.Color = plotutil.Color(i)
		l.Dashes = plotutil.Dashes(i / 7)
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("depth %d", c.Depth), l)
	}
	p.Add(plotter.NewGrid())
	return p, nil
}

func depthPlot(r SimResult) (*plot.Plot, error) {
	p := newPlot(fmt.Sprintf("Hop depth at the end: %s, %d viewers", r.Scenario, r.Viewers), "depth (deepest substream)", "viewers")
	vals := make(plotter.Values, 0, len(r.Depths))
	names := make([]string, 0, len(r.Depths))
	for _, d := range r.Depths {
		vals = append(vals, float64(d.Viewers))
		names = append(names, fmt.Sprint(d.Depth))
	}
	if len(vals) == 0 {
		vals, names = plotter.Values{0}, []string{"-"}
	}
	bars, err := plotter.NewBarChart(vals, vg.Points(14))
	if err != nil {
		return nil, err
	}
	bars.Color = color.RGBA{R: 60, G: 110, B: 180, A: 255}
	bars.LineStyle.Width = 0
	p.Add(bars)
	p.NominalX(names...)
	return p, nil
}
