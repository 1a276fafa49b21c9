package sfu

import (
	"context"
	"fmt"
	dto "github.com/prometheus/client_model/go"
	"syscall"
	"testing"
	"time"
)

// BenchmarkFanout runs one publisher at about 1 Mbit/s to N WHEP
// subscribers over loopback and reports the process CPU (publisher, SFU and
// subscribers together, from getrusage) and the subscribers' packet loss.
// It is slow; run it alone:
//
//	go test ./sfu -run '^$' -bench Fanout -benchtime 1x
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{1, 50, 150} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				fanout(b, n, 5*time.Second)
			}
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func fanout(b *testing.B, n int, window time.Duration) {
	b.StopTimer()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	env := newTestEnv(b, func(p *ServerParams) { p.ConnectTimeout = time.Minute })
	pub, resp, body := startPublisher(ctx, b, env, testStream, testKey, pubOptions{perFrame: 4})
	if pub == nil {
		b.Fatalf("WHIP: %d %s", resp.StatusCode, body)
	}
	defer pub.close()
	subs := make([]*testSubscriber, 0, n)
	defer func() {
		for _, s := range subs {
			s.close()
		}
	}()
	for i := 0; i < n; i++ {
		s, resp, body := startSubscriber(ctx, b, env, testStream, "")
		if s == nil {
			b.Fatalf("WHEP %d: %d %s", i, resp.StatusCode, body)
		}
		subs = append(subs, s)
	}
	for _, s := range subs { // everyone is receiving
		next(ctx, b, s.video)
	}
	for _, s := range subs { // start the window with empty queues
		for len(s.video) > 0 {
			<-s.video
		}
		for len(s.audio) > 0 {
			<-s.audio
		}
	}
	fwd := func() float64 {
		var m dto.Metric
		_ = env.s.m.packetsForwarded.Write(&m)
		return m.GetCounter().GetValue()
	}
	rcv := func() float64 {
		var m dto.Metric
		_ = env.s.m.packetsReceived.Write(&m)
		return m.GetCounter().GetValue()
	}
	b.StartTimer()
	fwd0, rcv0, sent0 := fwd(), rcv(), pub.sent.Load()
	cpu0, t0 := cpuTime(), time.Now()
	timer := time.NewTimer(window)
	select {
	case <-timer.C:
	case <-ctx.Done():
		b.Fatal("timeout")
	}
	cpu, wall := cpuTime()-cpu0, time.Since(t0)
	fwdN, rcvN := fwd()-fwd0, rcv()-rcv0
	b.StopTimer()
	b.ReportMetric(rcvN/wall.Seconds(), "pkt/s-in")
	b.ReportMetric(float64(pub.sent.Load()-sent0)/wall.Seconds(), "video-pkt/s-sent")
	b.ReportMetric(fwdN/wall.Seconds(), "pkt/s-fwd")

	var got, want, bytes int
	for _, s := range subs {
		var first, last uint16
		cnt := 0
		for len(s.video) > 0 {
			p := <-s.video
			if cnt == 0 {
				first = p.seq
			}
			last = p.seq
			cnt++
			bytes += 1000
		}
		got += cnt
		if cnt > 0 {
			want += int(last-first) + 1
		}
	}
	loss := 0.0
	if want > 0 {
		loss = 1 - float64(got)/float64(want)
	}
	b.ReportMetric(100*float64(cpu)/float64(wall), "cpu%")
	b.ReportMetric(100*loss, "loss%")
	b.ReportMetric(float64(bytes)*8/wall.Seconds()/1e6, "Mbit/s-out")
}
