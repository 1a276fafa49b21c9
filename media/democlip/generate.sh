#!/usr/bin/env bash
# Regenerates media/democlip/demo.mp4, the built-in demo stream, with Debian's ffmpeg.
# 10 s of testsrc2 + a 440 Hz sine: H.264 constrained baseline 640x360 at 30 fps with a
# 1 s GOP (keyframe every 30 frames, no scene-cut keyframes), Opus 48 kHz stereo in 20 ms
# packets. The clip loops seamlessly: 300 video frames and 500 Opus packets.
set -euo pipefail
cd "$(dirname "$0")"
ffmpeg -hide_banner -loglevel error -y \
  -f lavfi -i "testsrc2=size=640x360:rate=30:duration=10" \
  -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=10,aformat=channel_layouts=stereo" \
  -c:v libx264 -profile:v baseline -level 3.0 -pix_fmt yuv420p -preset veryfast \
  -b:v 450k -maxrate 500k -bufsize 500k -g 30 -keyint_min 30 -sc_threshold 0 \
  -x264-params "repeat-headers=1" \
  -c:a libopus -b:a 64k -frame_duration 20 -application audio \
  -movflags +faststart -map_metadata -1 -fflags +bitexact \
  demo.mp4
ls -l demo.mp4
