package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/seedcast/seedcast/media"
	"github.com/seedcast/seedcast/publish"
)

func publishCommand(stderr io.Writer) *ffcli.Command {
	var (
		endpoint, token, file string
		demo                  bool
		loops                 int
		wf                    webrtcFlags
		lf                    logFlags
	)
	fs := flag.NewFlagSet("seedcast publish", flag.ContinueOnError)
	fs.StringVar(&endpoint, "whip", "", "WHIP endpoint, e.g. http://127.0.0.1:8080/whip/live")
	fs.StringVar(&token, "token", "", "stream key (sent as a Bearer token)")
	fs.StringVar(&file, "file", "", "MP4 file to play (H.264 and/or Opus)")
	fs.BoolVar(&demo, "demo", false, "play the built-in demo clip")
	fs.IntVar(&loops, "loops", 0, "times to play the media (0: forever)")
	wf.register(fs)
	lf.register(fs)
	return &ffcli.Command{
		Name:       "publish",
		ShortUsage: "seedcast publish --whip URL --token KEY (--file FILE | --demo) [flags]",
		ShortHelp:  "publish a file or the demo clip over WHIP, in real time, as OBS would",
		FlagSet:    fs,
		Options:    envOptions(),
		Exec: func(ctx context.Context, _ []string) error {
			log, err := lf.logger(stderr)
			if err != nil {
				return err
			}
			if endpoint == "" || (file == "") == !demo {
				return errors.New("publish: need --whip and exactly one of --file and --demo")
			}
			var clip *media.Clip
			if demo {
				clip, err = media.DemoClip()
			} else {
				var data []byte
				if data, err = os.ReadFile(file); err == nil {
					clip, err = media.ReadMP4(data)
				}
			}
			if err != nil {
				return fmt.Errorf("publish: %w", err)
			}
			ice, _, err := wf.config()
			if err != nil {
				return err
			}
			return publish.Run(ctx, publish.Params{
				Endpoint: endpoint, Token: token, Clip: clip, Loops: loops, Logger: log,
				SettingEngine: ice.SettingEngine(),
			})
		},
	}
}
