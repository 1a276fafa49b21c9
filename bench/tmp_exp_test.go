package bench

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

func BenchmarkTmpHighFirst(b *testing.B) {
	o := benchOrigin(b)
	p := swarmParams(o, 50)
	p.Budgets = AudienceBudgets(50)
	slices.Sort(p.Budgets)
	slices.Reverse(p.Budgets)
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		r, err := RunSwarm(ctx, p)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		fmt.Print(r.Table())
	}
}
