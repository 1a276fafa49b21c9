#!/usr/bin/env bash
# Regenerates media/testdata/short.mp4: the first 0.1 s of the demo clip (3 video
# frames, 6 Opus packets), stream-copied. It is a small fuzz seed and test input.
set -euo pipefail
cd "$(dirname "$0")"
ffmpeg -hide_banner -loglevel error -y -i ../democlip/demo.mp4 -t 0.1 -c copy \
  -movflags +faststart -map_metadata -1 -fflags +bitexact short.mp4
ls -l short.mp4
