// Package media holds the media types every other package shares — tracks,
// access units, codecs — and the sources that produce them without a network:
// an MP4 file reader (mp4ff) and the embedded demo clip looped as a live source
// paced in real time.
//
// It knows nothing about chunks, manifests or WebRTC.
package media
