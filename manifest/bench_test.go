package manifest

import (
	"crypto/ed25519"
	"testing"
	"time"
)

// BenchmarkBLAKE3 hashes a typical chunk: 250 ms of ~500 kbit/s video.
func BenchmarkBLAKE3(b *testing.B) {
	for _, size := range []int{16 << 10, 256 << 10} {
		b.Run(byteSize(size), func(b *testing.B) {
			data := make([]byte, size)
			b.SetBytes(int64(size))
			for i := 0; i < b.N; i++ {
				Sum(data)
			}
		})
	}
}

func byteSize(n int) string {
	if n >= 1<<20 {
		return itoa(n>>20) + "MiB"
	}
	return itoa(n>>10) + "KiB"
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

// benchKey signs the benchmark batches.
var benchKey = ed25519.NewKeyFromSeed(vectorSeed())

// benchBatch is a batch as the chunker cuts it and ingest signs it: one slot
// of a video and an audio rendition.
func benchBatch() *Batch {
	t := time.Unix(1_800_000_000, 0)
	return &Batch{Stream: "demo", N: 1234, Entries: []Entry{
		{Kind: KindChunk, Rendition: "v0", Seq: 99, MediaTime: 24750 * time.Millisecond, Duration: 266667 * time.Microsecond, IngestTime: t, Size: 15000, Independent: true, Hash: Sum([]byte("v"))},
		{Kind: KindChunk, Rendition: "a0", Seq: 99, MediaTime: 24740 * time.Millisecond, Duration: 260 * time.Millisecond, IngestTime: t, Size: 2900, Independent: true, Hash: Sum([]byte("a"))},
	}}
}

func BenchmarkBatchSign(b *testing.B) {
	batch := benchBatch()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := batch.Sign(benchKey); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "batches/s")
}

func BenchmarkBatchVerify(b *testing.B) {
	batch := benchBatch()
	_ = batch.Sign(benchKey)
	pub := benchKey.Public().(ed25519.PublicKey)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := batch.Verify(pub); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "batches/s")
}
