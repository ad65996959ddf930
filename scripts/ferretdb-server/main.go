// A MongoDB-wire server for the integration tests: FerretDB on its SQLite
// backend, on loopback (started by scripts/mongo start --ferretdb).
//
//	ferretdb-server HOST PORT DIR
//
// DIR holds the SQLite files (one per database) and must exist. SIGTERM or
// SIGINT stops the server after the requests in flight.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: ferretdb-server HOST PORT DIR")
		os.Exit(2)
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: net.JoinHostPort(os.Args[1], os.Args[2])},
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Handler:   "sqlite",
		SQLiteURL: "file:" + os.Args[3] + "/",
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb-server:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := f.Run(ctx); err != nil && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, "ferretdb-server:", err)
		os.Exit(1)
	}
}
