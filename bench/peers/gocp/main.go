// gocp: the benchmark's Go peer. An ADS server (SotW and delta) built on go-control-plane's
// snapshot cache and xDS server, serving resources that meshpilot translated and encoded. It is
// the library most Envoy control planes in Go are built on, so its figures are the ones users
// compare meshpilot with.
//
// It listens on 127.0.0.1 (OS-chosen port) and prints "port N". Then it reads commands from stdin,
// one per line, and answers each with one line on stdout ("ok ..." or "err ..."):
//
//	load GROUP FILE     the group's whole snapshot: every resource in FILE, every type a new version
//	update GROUP FILE   replace or add FILE's resources by name; only their types get a new version
//	gc                  runtime.GC + debug.FreeOSMemory, so RSS means live memory
//	stats               "ok user=US sys=US heap=BYTES streams=N delta=N" (CPU time from getrusage)
//	heap FILE           write a heap profile (what holds the memory per stream)
//
// FILE holds records, each: u32 BE type URL length, type URL, u32 BE length, resource bytes (the
// encoded Listener, RouteConfiguration, Cluster, ClusterLoadAssignment or Secret message).
// Nested Any typed_configs stay opaque bytes, so no Envoy extension needs registering.
//
// It exits when stdin closes, so it never outlives the benchmark process that started it.
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"syscall"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tls "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/proto"
)

// groupHash puts a node in the group its resources were loaded for: node metadata BENCH_GROUP if
// set, else "grpc" for proxyless gRPC clients (GENERATOR: grpc), else "sidecar".
type groupHash struct{}

func (groupHash) ID(node *core.Node) string {
	f := node.GetMetadata().GetFields()
	if g := f["BENCH_GROUP"].GetStringValue(); g != "" {
		return g
	}
	if f["GENERATOR"].GetStringValue() == "grpc" {
		return "grpc"
	}
	return "sidecar"
}

// group is what a group's current snapshot holds, kept so that an update can build the next one.
type group struct {
	items    map[resource.Type]map[string]types.ResourceWithTTL
	versions map[resource.Type]string
}

var (
	groups  = map[string]*group{}
	version int64
	streams atomic.Int64
	deltas  atomic.Int64
)

func newMessage(typeURL string) (proto.Message, error) {
	switch typeURL {
	case resource.ListenerType:
		return &listener.Listener{}, nil
	case resource.RouteType:
		return &route.RouteConfiguration{}, nil
	case resource.ClusterType:
		return &cluster.Cluster{}, nil
	case resource.EndpointType:
		return &endpoint.ClusterLoadAssignment{}, nil
	case resource.SecretType:
		return &tls.Secret{}, nil
	}
	return nil, fmt.Errorf("unsupported type %s", typeURL)
}

// readResources reads a FILE (see the top) into resources by type, then by name.
func readResources(file string) (map[resource.Type]map[string]types.ResourceWithTTL, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	next := func() ([]byte, error) {
		if len(data) < 4 {
			return nil, errors.New("truncated record")
		}
		n := binary.BigEndian.Uint32(data)
		if uint32(len(data)-4) < n {
			return nil, errors.New("truncated record")
		}
		b := data[4 : 4+n]
		data = data[4+n:]
		return b, nil
	}
	out := map[resource.Type]map[string]types.ResourceWithTTL{}
	for len(data) > 0 {
		typeURL, err := next()
		if err != nil {
			return nil, err
		}
		body, err := next()
		if err != nil {
			return nil, err
		}
		msg, err := newMessage(string(typeURL))
		if err != nil {
			return nil, err
		}
		if err := proto.Unmarshal(body, msg); err != nil {
			return nil, fmt.Errorf("%s: %w", typeURL, err)
		}
		byName := out[string(typeURL)]
		if byName == nil {
			byName = map[string]types.ResourceWithTTL{}
			out[string(typeURL)] = byName
		}
		byName[cachev3.GetResourceName(msg)] = types.ResourceWithTTL{Resource: msg}
	}
	return out, nil
}

// snapshot builds the group's snapshot with a version per type, so that a change to one type
// (one route, some endpoints) wakes only that type's SotW watches, not every type's.
func (g *group) snapshot() *cachev3.Snapshot {
	s := &cachev3.Snapshot{}
	for typeURL, items := range g.items {
		s.Resources[cachev3.GetResponseType(typeURL)] = cachev3.Resources{Version: g.versions[typeURL], Items: items}
	}
	return s
}

func apply(c cachev3.SnapshotCache, cmd, name, file string) (string, error) {
	res, err := readResources(file)
	if err != nil {
		return "", err
	}
	version++
	v := fmt.Sprintf("v%d", version)
	g := groups[name]
	if cmd == "load" || g == nil {
		g = &group{items: map[resource.Type]map[string]types.ResourceWithTTL{}, versions: map[resource.Type]string{}}
	}
	count := 0
	for typeURL, items := range res {
		// A snapshot already set is read by stream goroutines: never change its maps, copy them.
		merged := make(map[string]types.ResourceWithTTL, len(g.items[typeURL])+len(items))
		if cmd == "update" {
			for k, r := range g.items[typeURL] {
				merged[k] = r
			}
		}
		for k, r := range items {
			merged[k] = r
		}
		g.items[typeURL] = merged
		g.versions[typeURL] = v
		count += len(items)
	}
	groups[name] = g
	if err := c.SetSnapshot(context.Background(), name, g.snapshot()); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s %s version=%s resources=%d", cmd, name, v, count), nil
}

func stats() string {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	us := func(t syscall.Timeval) int64 { return t.Sec*1e6 + t.Usec }
	return fmt.Sprintf("user=%d sys=%d heap=%d streams=%d delta=%d", us(ru.Utime), us(ru.Stime), m.HeapAlloc, streams.Load(), deltas.Load())
}

// writeHeapProfile writes what the Go heap holds, by allocation site (`go tool pprof -top BINARY FILE`).
func writeHeapProfile(file string) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	defer f.Close()
	return pprof.WriteHeapProfile(f)
}

// logger shows the cache's and server's warnings and errors on stderr, and drops the rest.
type logger struct{}

func (logger) Debugf(string, ...any)     {}
func (logger) Infof(string, ...any)      {}
func (logger) Warnf(f string, a ...any)  { fmt.Fprintf(os.Stderr, "gocp: warn: "+f+"\n", a...) }
func (logger) Errorf(f string, a ...any) { fmt.Fprintf(os.Stderr, "gocp: error: "+f+"\n", a...) }

func main() {
	// ads=false: with ads=true the cache answers a SotW request only when it names every resource
	// of the type in the snapshot (its superset check), so a proxyless client asking for 50 of 1,000
	// listeners would never get an answer. Without it, requests are answered with what they name.
	c := cachev3.NewSnapshotCache(false, groupHash{}, logger{})
	srv := serverv3.NewServer(context.Background(), c, serverv3.CallbackFuncs{
		StreamOpenFunc:        func(context.Context, int64, string) error { streams.Add(1); return nil },
		StreamClosedFunc:      func(int64, *core.Node) { streams.Add(-1) },
		DeltaStreamOpenFunc:   func(context.Context, int64, string) error { deltas.Add(1); return nil },
		DeltaStreamClosedFunc: func(int64, *core.Node) { deltas.Add(-1) },
	})
	gs := grpc.NewServer(grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{PermitWithoutStream: true}))
	discovery.RegisterAggregatedDiscoveryServiceServer(gs, srv)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "gocp:", err)
		os.Exit(1)
	}
	go func() { _ = gs.Serve(lis) }()
	fmt.Printf("port %d\n", lis.Addr().(*net.TCPAddr).Port)

	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 0 {
			continue
		}
		var out string
		var err error
		switch {
		case (f[0] == "load" || f[0] == "update") && len(f) == 3:
			out, err = apply(c, f[0], f[1], f[2])
		case f[0] == "gc":
			runtime.GC()
			debug.FreeOSMemory()
			out = "gc"
		case f[0] == "heap" && len(f) == 2:
			out, err = "heap", writeHeapProfile(f[1])
		case f[0] == "stats":
			out = stats()
		default:
			err = fmt.Errorf("unknown command %q", in.Text())
		}
		if err != nil {
			fmt.Printf("err %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
		} else {
			fmt.Printf("ok %s\n", out)
		}
	}
	// stdin closed: the benchmark is done (or gone).
	os.Exit(0)
}
