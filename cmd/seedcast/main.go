package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/peterbourgon/ff/v3"
	"github.com/peterbourgon/ff/v3/ffcli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "seedcast:", err)
		}
		os.Exit(2)
	}
}

// logFlags are the logging flags every subcommand takes.
type logFlags struct {
	format string
	level  string
}

func (l *logFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&l.format, "log-format", "text", "log format: text or json")
	fs.StringVar(&l.level, "log-level", "info", "log level: debug, info, warn or error")
}

func (l *logFlags) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(l.level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch l.format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: want text or json, got %q", l.format)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	root := &ffcli.Command{
		Name:       "seedcast",
		ShortUsage: "seedcast <subcommand> [flags]",
		LongHelp: "Seedcast is a peer-assisted livestream server: one broadcaster, many viewers\n" +
			"who pass verified chunks to each other while the origin seeds a few copies.\n" +
			"Run `seedcast <subcommand> --help` for a subcommand's flags; each flag can also\n" +
			"be set with SEEDCAST_<FLAG> (dashes as underscores).",
		Subcommands: []*ffcli.Command{serveCommand(stdout, stderr), publishCommand(stderr), viewerCommand(stdout, stderr), deviceCommand(stdout, stderr), simCommand(stdout, stderr), benchCommand(stdout, stderr), tokenCommand(stdout), versionCommand(stdout)},
		Exec: func(context.Context, []string) error {
			return flag.ErrHelp
		},
	}
	root.FlagSet = flag.NewFlagSet("seedcast", flag.ContinueOnError)
	root.FlagSet.SetOutput(stderr)
	for _, c := range root.Subcommands {
		c.FlagSet.SetOutput(stderr)
	}
	return root.ParseAndRun(ctx, args)
}

// envOptions makes every flag settable as SEEDCAST_<FLAG>.
func envOptions() []ff.Option {
	return []ff.Option{ff.WithEnvVarPrefix("SEEDCAST")}
}

func versionCommand(stdout io.Writer) *ffcli.Command {
	fs := flag.NewFlagSet("seedcast version", flag.ContinueOnError)
	return &ffcli.Command{
		Name:       "version",
		ShortUsage: "seedcast version",
		ShortHelp:  "print the build's version",
		FlagSet:    fs,
		Exec: func(context.Context, []string) error {
			fmt.Fprintln(stdout, "seedcast", buildVersion())
			return nil
		},
	}
}

// version is set at link time (-ldflags "-X main.version=v1.2.3").
var version = ""

func buildVersion() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := info.Main.Version
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" {
			v = strings.TrimSpace(v + " " + s.Value)
		}
	}
	return v + " " + info.GoVersion
}
