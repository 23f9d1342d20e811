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
	"syscall"

	"github.com/cygnet-ipsec/cygnet/internal/config"
	"github.com/cygnet-ipsec/cygnet/internal/daemon"
)

const defaultConfig = config.DefaultPath

// runDaemon is `cygnet daemon [-c FILE]`: it runs in the foreground, logs to
// standard error, deletes its SAs politely and exits 0 on SIGTERM or SIGINT,
// and reloads the configuration on SIGHUP.
func runDaemon(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("daemon", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var path string
	fs.StringVar(&path, "c", defaultConfig, "")
	fs.StringVar(&path, "config", defaultConfig, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			io.WriteString(stdout, "usage: cygnet daemon [-c FILE]\n")
			return exitOK
		}
		return usageError(stderr, "daemon: "+err.Error())
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "daemon takes no arguments besides -c FILE")
	}

	cfg, err := config.Load(path)
	if err != nil {
		return fail(stderr, err)
	}
	level := new(slog.LevelVar)
	level.Set(cfg.Daemon.Log.Level)
	hopts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(stderr, hopts)
	if cfg.Daemon.Log.Format == "json" {
		h = slog.NewJSONHandler(stderr, hopts)
	}
	log := slog.New(h)

	// CYGNET_PPROF=host:port turns the profiler on without editing the
	// configuration (docs/daemon.md, "Profiling").
	pprofAddr := os.Getenv("CYGNET_PPROF")
	if pprofAddr != "" {
		if err := config.CheckHostPort(pprofAddr); err != nil {
			return fail(stderr, fmt.Errorf("CYGNET_PPROF: %w", err))
		}
	}
	d, err := daemon.New(cfg, daemon.Options{Logger: log, LogLevel: level, Pprof: pprofAddr})
	if err != nil {
		return fail(stderr, err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-hup:
				log.Info("SIGHUP: reloading the configuration", "file", cfg.Path)
				if err := d.Reload(ctx); err != nil {
					log.Error("reload failed", "err", err.Error())
				}
			case <-ctx.Done():
				return
			}
		}
	}()

	if err := d.Run(ctx); err != nil {
		return fail(stderr, err)
	}
	return exitOK
}
