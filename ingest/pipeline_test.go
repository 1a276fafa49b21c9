package ingest

import (
	"bytes"
	"crypto/ed25519"
	"testing"

	"github.com/seedcast/seedcast/chunker"
	"github.com/seedcast/seedcast/media"
)

// The pipeline signs every batch the chunker cuts with the stream's key
// before handing it on; without a key it does not start.
func TestPipelineSigns(t *testing.T) {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{5}, ed25519.SeedSize))
	if _, err := NewPipeline(PipelineParams{Stream: "s", Publish: func(chunker.Output) error { return nil }}); err == nil {
		t.Error("pipeline without a key")
	}
	if _, err := NewPipeline(PipelineParams{Stream: "s", Key: key}); err == nil {
		t.Error("pipeline without Publish")
	}
	var outs []chunker.Output
	pipe, err := NewPipeline(PipelineParams{Stream: "s", Key: key, Publish: func(o chunker.Output) error {
		outs = append(outs, o)
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	clip, err := media.DemoClip()
	if err != nil {
		t.Fatal(err)
	}
	if err := pipe.AddRendition("v0", *clip.Video); err != nil {
		t.Fatal(err)
	}
	for _, au := range clip.VideoUnits[:60] {
		if err := pipe.Push("v0", au); err != nil {
			t.Fatal(err)
		}
	}
	pipe.Close()
	if len(outs) < 2 {
		t.Fatalf("%d batches", len(outs))
	}
	pub := key.Public().(ed25519.PublicKey)
	for _, o := range outs {
		if err := o.Batch.Verify(pub); err != nil {
			t.Errorf("batch %d: %v", o.Batch.N, err)
		}
	}
}
