package lifecycle

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Restart implements "restart": it stops one component of a running
// instance and starts it again with the command line it had (same flags,
// ports, certificates and data), then waits until it serves again. Fault
// tests use it to restart the apiserver (or etcd) under a client.
func Restart(args []string) int {
	fs := flag.NewFlagSet("restart", flag.ContinueOnError)
	component := fs.String("component", "apiserver", "component to restart: "+strings.Join(components, ", "))
	downFor := fs.Duration("down-for", 0, "how long the component stays stopped")
	kill := fs.Bool("kill", false, "stop with SIGKILL at once (default: SIGTERM, SIGKILL after 5s)")
	timeout := fs.Duration("timeout", 60*time.Second, "readiness timeout after the start")
	in, err := parseCommon(fs, args)
	if err != nil {
		logf("%v", err)
		return 2
	}
	if !slices.Contains(components, *component) {
		logf("unknown --component %q (one of %s)", *component, strings.Join(components, ", "))
		return 2
	}
	cloexecInherited()
	unlock, err := in.lock()
	if err != nil {
		logf("lock: %v", err)
		return 1
	}
	defer unlock(false)
	if err := in.restart(*component, *downFor, *kill, *timeout); err != nil {
		logf("restart %s of %q: %v", *component, in.name, err)
		return 1
	}
	return 0
}

func (in *instance) restart(component string, downFor time.Duration, kill bool, timeout time.Duration) error {
	st, err := in.readState()
	if err != nil {
		return fmt.Errorf("no instance state (is %q up?): %w", in.name, err)
	}
	pid := readPid(in.path("pids", component))
	if !ours(pid, in.dir) {
		return fmt.Errorf("%s is not running (pid %d)", component, pid)
	}
	// The command line it was started with: sluice-testenv <component> args…
	argv := strings.Split(strings.TrimSuffix(string(procCmdline(pid)), "\x00"), "\x00")
	if len(argv) < 2 || argv[1] != component {
		return fmt.Errorf("pid %d runs %q, not %s", pid, argv, component)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}

	t0 := time.Now()
	if kill {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		waitGone([]int{pid}, 5*time.Second)
	} else {
		killAll([]int{pid}, in.dir, 5*time.Second)
	}
	if alive(pid) {
		return fmt.Errorf("pid %d did not stop", pid)
	}
	// A SIGKILLed process shows as a zombie as soon as its main thread is
	// gone, while its other threads may still be exiting with its sockets
	// open: wait until its ports can be bound again, or the new one fails
	// with "address already in use".
	if busy := waitPortsFree(componentPorts(component, st.Ports), 30*time.Second); len(busy) > 0 {
		return fmt.Errorf("%s stopped but its ports %v are still in use", component, busy)
	}
	logf("%s stopped (pid %d) in %.1fs", component, pid, time.Since(t0).Seconds())
	time.Sleep(downFor)

	s := &starter{in: in, exe: exe, exited: make(chan exitEvent, 1)}
	t1 := time.Now()
	if err := s.spawn(component, argv[2:]...); err != nil {
		return err
	}
	var check func() error
	switch component {
	case "etcd":
		url := fmt.Sprintf("http://127.0.0.1:%d", st.Ports["etcd"])
		plain := &http.Client{Timeout: 2 * time.Second}
		check = func() error { return etcdHealth(plain, url) }
	case "apiserver":
		check = func() error { return in.readyz(st.Server) }
	default:
		// Clients of the apiserver: alive for a second is all "up" asks of them.
		check = func() error {
			if time.Since(t1) < time.Second {
				return fmt.Errorf("just started")
			}
			return nil
		}
	}
	if err := s.waitFor(component, component+" ready", time.Now().Add(timeout), check); err != nil {
		logPath := in.path("logs", component+".log")
		fmt.Fprintf(os.Stderr, "----- last lines of %s -----\n%s\n----- end of %s -----\n", logPath, tail(logPath, 30), component)
		return err
	}
	logf("%s restarted (pid %d), ready %.1fs after the start", component, s.started[0], time.Since(t1).Seconds())
	return nil
}

// etcdHealth checks etcd's /health; nil means healthy.
func etcdHealth(c *http.Client, url string) error {
	resp, err := c.Get(url + "/health")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"health":"true"`) {
		return fmt.Errorf("%d %s", resp.StatusCode, b)
	}
	return nil
}

// componentPorts are the ports a component listens on (state.Ports keys).
func componentPorts(component string, ports map[string]int) []int {
	var out []int
	for name, p := range ports {
		if name == component || strings.HasPrefix(name, component+"-") {
			out = append(out, p)
		}
	}
	return out
}

// waitPortsFree waits until every port can be bound on 127.0.0.1; it
// returns those still taken at the deadline.
func waitPortsFree(ports []int, timeout time.Duration) []int {
	deadline := time.Now().Add(timeout)
	for {
		var busy []int
		for _, p := range ports {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				busy = append(busy, p)
				continue
			}
			l.Close()
		}
		if len(busy) == 0 || time.Now().After(deadline) {
			return busy
		}
		ports = busy
		time.Sleep(50 * time.Millisecond)
	}
}
