package bench

import (
	"slices"
	"time"
)

// setReport fills the result's measures from the window's report (and
// its latency samples by depth), for meanN viewers on average at stream
// rate rateKbps, viewers at full strength.
func (res *SimResult) setReport(rep SwarmReport, byDepth map[int][]time.Duration, meanN, rateKbps float64, viewers int) {
	res.Report = rep
	res.StallReports, res.Reassigned, res.OriginPulls, res.HTTPFed = rep.StallReports, rep.Reassigned, rep.OriginPulls, rep.HTTPFed
	res.WindowSeconds = rep.Window.Seconds()
	res.MeanViewers = meanN
	res.ServerEgressMbps, res.SeedMbps, res.HTTPMbps, res.Copies = rep.EgressMbps, rep.SeedMbps, rep.HTTPMbps, rep.Copies
	res.CDNMbps = meanN * rateKbps / 1000
	if c, ok := ClaimMbps(float64(viewers), int(rateKbps+0.5)); ok {
		res.ClaimMbps = &c
	}
	res.FluidBoundMbps, res.BoundCopies, res.Efficiency = rep.BoundMbps, rep.BoundCopies, rep.Efficiency
	res.RelayBudgetMbps, res.RelayMbps = rep.BudgetMbps, rep.RelayMbps
	res.Offload, res.Continuity, res.OnTime, res.Late = rep.Offload, rep.Continuity, rep.OnTime, rep.Late
	res.LatencyP50Ms, res.LatencyP95Ms, res.LatencyP99Ms = ms(rep.P50), ms(rep.P95), ms(rep.P99)
	for _, d := range rep.ByDepth {
		res.LatencyByDepth = append(res.LatencyByDepth, DepthLatency{
			Depth: d.Depth, Viewers: d.Nodes, Samples: d.Samples, P50Ms: ms(d.P50), P95Ms: ms(d.P95), P99Ms: ms(d.P99),
			Continuity: d.Continuity, Offload: d.Offload,
		})
		lat := slices.Clone(byDepth[d.Depth])
		if len(lat) == 0 {
			continue
		}
		slices.Sort(lat)
		cdf := DepthCDF{Depth: d.Depth, Ms: make([]float64, 101)}
		for q := range cdf.Ms {
			cdf.Ms[q] = ms(lat[min(q*len(lat)/100, len(lat)-1)])
		}
		res.LatencyCDF = append(res.LatencyCDF, cdf)
	}
}

// setWindowBound sets the report's egress over HTTP (httpMbps, as the
// origin counted it) and the fluid bound for meanN viewers with relay
// budgets summing to meanUMbps on average over the window, at rate
// rMbps, as RunSim and RunHarness take them.
func (rep *SwarmReport) setWindowBound(httpMbps, meanN, meanUMbps, rMbps float64) {
	rep.HTTPMbps = httpMbps
	rep.EgressMbps = rep.SeedMbps + rep.HTTPMbps
	rep.BudgetMbps = meanUMbps
	rep.BoundMbps = max(rMbps, meanN*rMbps-meanUMbps) // FluidBound, with n and U averaged over the window
	rep.Copies, rep.BoundCopies, rep.Efficiency = ratio(rep.EgressMbps, rMbps), ratio(rep.BoundMbps, rMbps), ratio(rep.EgressMbps, rep.BoundMbps)
}
