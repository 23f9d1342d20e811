package testbed

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

var iperfCounter atomic.Uint64

// iperf3Result is the part of `iperf3 -J` output Iperf3 reads.
type iperf3Result struct {
	Error string `json:"error"`
	End   struct {
		SumReceived struct {
			BitsPerSecond float64 `json:"bits_per_second"`
		} `json:"sum_received"`
	} `json:"end"`
}

// Iperf3 runs an iperf3 server on addr inside server and a client inside
// client for seconds, and returns the throughput the receiver measured in
// bits per second: TCP, or UDP at unlimited rate (-b 0) when udp is set
// (then the figure counts only datagrams that arrived). The client picks its
// source address by route, so through a tunnel it uses the route's source.
func Iperf3(t testing.TB, server, client *Netns, addr netip.Addr, seconds int, udp bool) (bitsPerSecond float64) {
	t.Helper()
	Require(t, "iperf3")
	if seconds < 1 {
		seconds = 1
	}
	// A port per run, so that runs against one namespace can overlap.
	port := strconv.Itoa(5201 + int(iperfCounter.Add(1)%1000))
	srv := server.Start(t, "iperf3-server["+server.Name+"]", StartOptions{},
		"iperf3", "--server", "--one-off", "--bind", addr.String(), "--port", port, "--forceflush")
	defer srv.Stop()
	srv.WaitOutput(t, "Server listening", readyTimeout)

	args := []string{"--client", addr.String(), "--port", port, "--time", strconv.Itoa(seconds),
		"--json", "--connect-timeout", "5000"}
	if udp {
		args = append(args, "--udp", "--bitrate", "0")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(seconds)*time.Second+30*time.Second)
	defer cancel()
	out, err := client.Command(ctx, "iperf3", args...).Output()
	var res iperf3Result
	if jerr := json.Unmarshal(out, &res); jerr != nil || res.Error != "" || err != nil {
		t.Fatalf("testbed: iperf3 client in %s -> %s: %v %s %v\n%s", client.Name, addr, err, res.Error, jerr, tail(string(out), 20))
	}
	// The receiver's figure (iperf 3.12 gives sum_received for UDP too).
	return res.End.SumReceived.BitsPerSecond
}

// FormatBits renders a rate as "123.4 Mbit/s".
func FormatBits(bps float64) string {
	switch {
	case bps >= 1e9:
		return fmt.Sprintf("%.2f Gbit/s", bps/1e9)
	case bps >= 1e6:
		return fmt.Sprintf("%.1f Mbit/s", bps/1e6)
	default:
		return fmt.Sprintf("%.0f kbit/s", bps/1e3)
	}
}
