// NATS core fan-out, measured the way `chorus bench --subscribers` measures
// chorus: N subscriber connections of one subject spread round-robin over
// the servers, one publisher sending M messages of B bytes at R per second
// (open loop), each payload carrying its index and send time. Reports
// sessions per server, RSS per idle connection (server RSS with the N idle
// subscribers minus before, / N), deliveries per second (from the first
// send to the last receipt), send->received latency p50/p99/max, and
// whether every subscriber got every message in order.
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// Latency buckets of 10 µs up to 20 s.
const bucketUs = 10
const buckets = 2_000_000

func rssKiB(pid string) int64 {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			f := strings.Fields(l)
			v, _ := strconv.ParseInt(f[1], 10, 64)
			return v
		}
	}
	return -1
}

// cpuS is the user+system CPU time of a process, seconds.
func cpuS(pid string) float64 {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return -1
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndex(s, ")")+2:])
	u, _ := strconv.ParseFloat(f[11], 64)
	k, _ := strconv.ParseFloat(f[12], 64)
	return (u + k) / 100
}

type sub struct {
	next int64 // next expected index
	bad  int32
}

func main() {
	urls := flag.String("urls", "nats://127.0.0.1:25101,nats://127.0.0.1:25102,nats://127.0.0.1:25103", "servers (subscribers round-robin)")
	pids := flag.String("pids", "", "server PIDs in the order of -urls (for RSS)")
	n := flag.Int("subs", 10000, "subscriber connections")
	m := flag.Int("msgs", 500, "messages to publish")
	rate := flag.Float64("rate", 50, "messages per second")
	size := flag.Int("size", 100, "payload bytes")
	flag.Parse()
	servers := strings.Split(*urls, ",")
	pidList := []string{}
	if *pids != "" {
		pidList = strings.Split(*pids, ",")
	}
	base := make([]int64, len(pidList))
	for i, p := range pidList {
		base[i] = rssKiB(p)
	}
	t0 := time.Now()
	hist := make([]int64, buckets)
	var deliveries, lastNs int64
	subs := make([]*sub, *n)
	conns := make([]*nats.Conn, *n)
	perServer := make([]int, len(servers))
	var wg sync.WaitGroup
	var failed int64
	sem := make(chan struct{}, 64)
	started := time.Now()
	for i := 0; i < *n; i++ {
		subs[i] = &sub{}
		perServer[i%len(servers)]++
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			nc, err := nats.Connect(servers[i%len(servers)], nats.MaxReconnects(0))
			if err != nil {
				atomic.AddInt64(&failed, 1)
				return
			}
			s := subs[i]
			_, err = nc.Subscribe("fanout", func(msg *nats.Msg) {
				now := time.Since(t0).Nanoseconds()
				f := strings.SplitN(string(msg.Data), " ", 3)
				idx, _ := strconv.ParseInt(f[0], 10, 64)
				sent, _ := strconv.ParseInt(f[1], 10, 64)
				b := (now - sent) / 1000 / bucketUs
				if b >= buckets {
					b = buckets - 1
				}
				atomic.AddInt64(&hist[b], 1)
				atomic.AddInt64(&deliveries, 1)
				atomic.StoreInt64(&lastNs, now)
				if idx != s.next {
					s.bad = 1
				}
				s.next = idx + 1
			})
			if err == nil {
				err = nc.Flush() // the server has the subscription
			}
			if err != nil {
				atomic.AddInt64(&failed, 1)
				nc.Close()
				return
			}
			conns[i] = nc
		}(i)
	}
	wg.Wait()
	subscribeS := time.Since(started).Seconds()
	time.Sleep(2 * time.Second)
	idle := make([]int64, len(pidList))
	for i, p := range pidList {
		idle[i] = rssKiB(p)
	}
	serverCPU0, selfCPU0 := 0.0, cpuS("self")
	for _, p := range pidList {
		serverCPU0 += cpuS(p)
	}
	pub, err := nats.Connect(servers[0])
	if err != nil {
		panic(err)
	}
	pad := strings.Repeat("x", *size)
	firstNs := time.Since(t0).Nanoseconds()
	for i := 0; i < *m; {
		due := int(time.Since(t0.Add(time.Duration(firstNs))).Seconds()**rate) + 1
		if due > *m {
			due = *m
		}
		for ; i < due; i++ {
			p := fmt.Sprintf("%d %d ", i, time.Since(t0).Nanoseconds())
			if len(p) < *size {
				p += pad[:*size-len(p)]
			}
			if err := pub.Publish("fanout", []byte(p)); err != nil {
				panic(err)
			}
		}
		pub.Flush()
		time.Sleep(2 * time.Millisecond)
	}
	want := int64(*n-int(failed)) * int64(*m)
	deadline := time.Now().Add(30 * time.Second)
	for atomic.LoadInt64(&deliveries) < want && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	got := atomic.LoadInt64(&deliveries)
	serverCPU, selfCPU := -serverCPU0, cpuS("self")-selfCPU0
	for _, p := range pidList {
		serverCPU += cpuS(p)
	}
	complete := 0
	for i, s := range subs {
		if conns[i] != nil && s.bad == 0 && s.next == int64(*m) {
			complete++
		}
	}
	q := func(f float64) float64 {
		if f >= 1 {
			for i := len(hist) - 1; i >= 0; i-- {
				if hist[i] > 0 {
					return float64((i+1)*bucketUs) / 1000
				}
			}
			return -1
		}
		target := int64(float64(got) * f)
		var c int64
		for i, v := range hist {
			c += v
			if c > target {
				return float64((i+1)*bucketUs) / 1000
			}
		}
		return -1
	}
	span := float64(atomic.LoadInt64(&lastNs)-firstNs) / 1e9
	fmt.Printf("nats fan-out: %d subscribers (%d failed) over %d servers %v, subscribed in %.1f s; %d messages of %d B at %.0f/s\n",
		*n, failed, len(servers), perServer, subscribeS, *m, *size, *rate)
	fmt.Printf("deliveries: %d of %d in %.2f s = %.0f deliveries/s; %d subscribers got every message in order\n",
		got, want, span, float64(got)/span, complete)
	fmt.Printf("delivery latency (send -> received, ms): p50 %.1f  p99 %.1f  max %.1f\n", q(0.5), q(0.99), q(1.0))
	fmt.Printf("cpu: servers %.2f s, subscribers+publisher %.2f s = %.2f µs per delivery in all\n",
		serverCPU, selfCPU, (serverCPU+selfCPU)*1e6/float64(got))
	for i := range pidList {
		per := float64(idle[i]-base[i]) * 1024 / float64(perServer[i])
		fmt.Printf("server %d: %d connections, RSS %d -> %d KiB idle = %.1f KiB per idle connection\n",
			i+1, perServer[i], base[i], idle[i], per/1024)
	}
	for _, nc := range conns {
		if nc != nil {
			nc.Close()
		}
	}
}
