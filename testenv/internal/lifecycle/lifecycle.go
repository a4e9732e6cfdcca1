// Package lifecycle implements up/down/status/env/watchdog: it starts a
// local control plane made of sluice-testenv child processes, one state
// directory per named instance.
package lifecycle

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/component-base/version"
)

// Components in start order. The watchdog is optional and not listed here.
var components = []string{"etcd", "apiserver", "controller-manager", "scheduler", "nodesim"}

const watchdogName = "watchdog"

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "sluice-testenv: "+format+"\n", args...)
}

type instance struct {
	name string
	dir  string
}

func (in *instance) path(p ...string) string {
	return filepath.Join(append([]string{in.dir}, p...)...)
}
func (in *instance) kubeconfigPath() string    { return in.path("kubeconfig") }
func (in *instance) exportLine() string        { return "export KUBECONFIG=" + in.kubeconfigPath() }
func (in *instance) lock() (func(bool), error) { return lockFile(in.dir + ".lock") }

func (in *instance) pids() map[string]int {
	m := map[string]int{}
	for _, c := range append(append([]string{}, components...), watchdogName) {
		if pid := readPid(in.path("pids", c)); pid > 0 {
			m[c] = pid
		}
	}
	return m
}

// state is persisted in <dir>/instance.json.
type state struct {
	Name       string         `json:"name"`
	Server     string         `json:"server"`
	Ports      map[string]int `json:"ports"`
	Nodes      int            `json:"nodes"`
	OwnerPid   int            `json:"ownerPid,omitempty"`
	StartedAt  time.Time      `json:"startedAt"`
	Kubernetes string         `json:"kubernetes"`
}

func (in *instance) readState() (*state, error) {
	b, err := os.ReadFile(in.path("instance.json"))
	if err != nil {
		return nil, err
	}
	var s state
	return &s, json.Unmarshal(b, &s)
}

// httpClient returns an admin client for the instance's apiserver.
func (in *instance) httpClient(timeout time.Duration) (*http.Client, error) {
	caPEM, err := os.ReadFile(in.path("pki", "ca.crt"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	cert, err := tls.LoadX509KeyPair(in.path("pki", "admin.crt"), in.path("pki", "admin.key"))
	if err != nil {
		return nil, err
	}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}},
			DisableKeepAlives: true,
		},
	}, nil
}

// readyz checks the apiserver's /readyz; nil means ready.
func (in *instance) readyz(server string) error {
	hc, err := in.httpClient(3 * time.Second)
	if err != nil {
		return err
	}
	resp, err := hc.Get(server + "/readyz")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("readyz %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return nil
}

// health reports per-component liveness and overall health.
func (in *instance) health() (map[string]bool, error) {
	st, err := in.readState()
	if err != nil {
		return nil, fmt.Errorf("no instance state: %w", err)
	}
	pids := in.pids()
	live := map[string]bool{}
	var dead []string
	for _, c := range components {
		live[c] = ours(pids[c], in.dir)
		if !live[c] {
			dead = append(dead, c)
		}
	}
	if pid, ok := pids[watchdogName]; ok {
		live[watchdogName] = ours(pid, in.dir)
	}
	if len(dead) > 0 {
		return live, fmt.Errorf("dead components: %s", strings.Join(dead, ", "))
	}
	if err := in.readyz(st.Server); err != nil {
		return live, fmt.Errorf("apiserver not ready: %w", err)
	}
	return live, nil
}

// stop kills every process recorded for the instance and removes its dir.
// Clients go first, then the apiserver, then etcd: an apiserver whose etcd
// vanished takes its time shutting down.
func (in *instance) stop() error {
	in.kill()
	return os.RemoveAll(in.dir)
}

// kill stops every process recorded for the instance, in stages.
func (in *instance) kill() {
	pids := in.pids()
	stages := [][]string{
		{watchdogName, "nodesim", "scheduler", "controller-manager"},
		{"apiserver"},
		{"etcd"},
	}
	for _, stage := range stages {
		var ps []int
		for _, c := range stage {
			if pid, ok := pids[c]; ok {
				ps = append(ps, pid)
			}
		}
		killAll(ps, in.dir, 5*time.Second)
	}
}

func parseCommon(fs *flag.FlagSet, args []string) (*instance, error) {
	name := fs.String("name", "default", "instance name")
	dir := fs.String("dir", "", "state directory (default ~/.cache/sluice/testenv/run/<name>)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if *name == "" || strings.ContainsAny(*name, "/\x00") || *name == "." || *name == ".." {
		return nil, fmt.Errorf("invalid --name %q", *name)
	}
	d := *dir
	if d == "" {
		d = defaultDir(*name)
	}
	abs, err := filepath.Abs(d)
	if err != nil {
		return nil, err
	}
	return &instance{name: *name, dir: filepath.Clean(abs)}, nil
}

// ------------------------------------------------------------------ up ---

// auditPolicy records every request at level Metadata (verb, user, user
// agent, object reference, response code; no bodies).
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
`

// Up implements "up".
func Up(args []string) int {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	nodes := fs.Int("nodes", 2, "number of simulated nodes")
	ownerPid := fs.Int("owner-pid", 0, "tear the instance down when this process exits")
	timeout := fs.Duration("timeout", 90*time.Second, "readiness timeout")
	audit := fs.Bool("audit-log", false, "write the apiserver's audit log (one JSON line per request, level Metadata) to <dir>/logs/audit.log")
	in, err := parseCommon(fs, args)
	if err != nil {
		logf("%v", err)
		return 2
	}
	if *ownerPid != 0 && !alive(*ownerPid) {
		logf("--owner-pid %d is not running", *ownerPid)
		return 2
	}
	cloexecInherited()
	unlock, err := in.lock()
	if err != nil {
		logf("lock: %v", err)
		return 1
	}
	defer unlock(false)

	if _, err := os.Stat(in.dir); err == nil {
		live, herr := in.health()
		// All processes alive but the apiserver not answering: give a busy
		// machine some slack before declaring the instance stale.
		for i := 0; herr != nil && allLive(live) && i < 10; i++ {
			time.Sleep(time.Second)
			live, herr = in.health()
		}
		if herr == nil {
			logf("instance %q already running in %s", in.name, in.dir)
			fmt.Println(in.exportLine())
			return 0
		} else {
			logf("cleaning up stale instance %q in %s (%v)", in.name, in.dir, herr)
		}
		if err := in.stop(); err != nil {
			logf("cleanup: %v", err)
			return 1
		}
	}

	var lastErr error
	for attempt := 1; attempt <= 3; attempt++ {
		start := time.Now()
		st, retry, err := in.start(*nodes, *ownerPid, *timeout, *audit)
		if err == nil {
			logf("instance %q ready in %.1fs (apiserver %s, %d nodes)", in.name, time.Since(start).Seconds(), st.Server, *nodes)
			fmt.Println(in.exportLine())
			return 0
		}
		lastErr = err
		if !retry || attempt == 3 {
			// Keep the logs for a post-mortem; the next "up" or "down"
			// of this name removes them.
			in.kill()
			_ = os.RemoveAll(in.path("etcd"))
			break
		}
		_ = in.stop()
		logf("attempt %d failed (%v); retrying with new ports", attempt, err)
	}
	logf("up failed: %v (logs: %s)", lastErr, in.path("logs"))
	return 1
}

type exitEvent struct {
	name string
	err  error
}

type starter struct {
	in      *instance
	exe     string
	started []int
	exited  chan exitEvent
}

func (s *starter) spawn(name string, args ...string) error {
	logPath := s.in.path("logs", name+".log")
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer lf.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer devnull.Close()
	cmd := &exec.Cmd{
		Path:        s.exe,
		Args:        append([]string{"sluice-testenv", name}, args...),
		Stdin:       devnull,
		Stdout:      lf,
		Stderr:      lf,
		Dir:         s.in.dir,
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	pid := cmd.Process.Pid
	s.started = append(s.started, pid)
	if err := os.WriteFile(s.in.path("pids", name), []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		return err
	}
	go func() {
		err := cmd.Wait()
		s.exited <- exitEvent{name: name, err: err}
	}()
	return nil
}

// componentError carries the component whose log explains a failure.
type componentError struct {
	component string
	err       error
}

func (e *componentError) Error() string { return e.component + ": " + e.err.Error() }

// waitFor polls check until it succeeds, a child exits, or the deadline.
func (s *starter) waitFor(component, what string, deadline time.Time, check func() error) error {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	var last error
	for {
		if last = check(); last == nil {
			return nil
		}
		select {
		case ev := <-s.exited:
			if ev.name == watchdogName {
				continue
			}
			return &componentError{ev.name, fmt.Errorf("exited during startup (%v)", ev.err)}
		case <-t.C:
		}
		if time.Now().After(deadline) {
			return &componentError{component, fmt.Errorf("timed out waiting for %s: %v", what, last)}
		}
	}
}

// start brings up a fresh instance. retry reports whether a failure looks
// like a port race worth retrying.
func (in *instance) start(nodes, ownerPid int, timeout time.Duration, audit bool) (_ *state, retry bool, err error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, false, err
	}
	for _, d := range []string{"logs", "pids", "pki", "etcd"} {
		if err := os.MkdirAll(in.path(d), 0o700); err != nil {
			return nil, false, err
		}
	}
	p, err := generatePKI(in.path("pki"))
	if err != nil {
		return nil, false, fmt.Errorf("pki: %w", err)
	}
	ports, err := freePorts(5)
	if err != nil {
		return nil, false, err
	}
	pm := map[string]int{"etcd": ports[0], "etcd-peer": ports[1], "apiserver": ports[2], "controller-manager": ports[3], "scheduler": ports[4]}
	server := fmt.Sprintf("https://127.0.0.1:%d", pm["apiserver"])
	for _, kc := range []struct {
		file, user string
		kp         *keyPair
	}{
		{"kubeconfig", "admin", p.admin},
		{"controller-manager.kubeconfig", "system:kube-controller-manager", p.kcm},
		{"scheduler.kubeconfig", "system:kube-scheduler", p.scheduler},
	} {
		b, err := kubeconfig(server, p.ca, kc.kp, kc.user)
		if err != nil {
			return nil, false, err
		}
		if err := os.WriteFile(in.path(kc.file), b, 0o600); err != nil {
			return nil, false, err
		}
	}
	st := &state{Name: in.name, Server: server, Ports: pm, Nodes: nodes, OwnerPid: ownerPid,
		StartedAt: time.Now().UTC(), Kubernetes: version.Get().GitVersion}
	sb, _ := json.MarshalIndent(st, "", "  ")
	if err := os.WriteFile(in.path("instance.json"), sb, 0o644); err != nil {
		return nil, false, err
	}

	s := &starter{in: in, exe: exe, exited: make(chan exitEvent, 16)}
	t0 := time.Now()
	progress := func(format string, args ...any) {
		logf("[%5.1fs] "+format, append([]any{time.Since(t0).Seconds()}, args...)...)
	}
	deadline := time.Now().Add(timeout)
	fail := func(err error) (*state, bool, error) {
		var ce *componentError
		if errors.As(err, &ce) {
			logPath := in.path("logs", ce.component+".log")
			logs := tail(logPath, 30)
			fmt.Fprintf(os.Stderr, "----- last lines of %s -----\n%s\n----- end of %s -----\n", logPath, logs, ce.component)
			retry = strings.Contains(logs, "address already in use")
		}
		return nil, retry, err
	}
	pki := func(f string) string { return in.path("pki", f) }

	// The watchdog goes first, so that the owner dying at any point (even
	// together with this "up" process) still stops whatever was started.
	if ownerPid != 0 {
		if err := s.spawn(watchdogName, "--dir", in.dir, "--owner-pid", strconv.Itoa(ownerPid),
			"--owner-start", procStartTime(ownerPid)); err != nil {
			return fail(err)
		}
	}

	// etcd
	progress("starting etcd on 127.0.0.1:%d", pm["etcd"])
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", pm["etcd"])
	if err := s.spawn("etcd", "--data-dir", in.path("etcd"),
		"--listen-client-url", etcdURL,
		"--listen-peer-url", fmt.Sprintf("http://127.0.0.1:%d", pm["etcd-peer"])); err != nil {
		return fail(err)
	}
	plain := &http.Client{Timeout: 2 * time.Second}
	if err := s.waitFor("etcd", "etcd /health", deadline, func() error { return etcdHealth(plain, etcdURL) }); err != nil {
		return fail(err)
	}

	progress("etcd is healthy")
	// kube-apiserver
	progress("starting kube-apiserver on %s", server)
	apiserverArgs := []string{
		"--etcd-servers", etcdURL,
		"--bind-address", "127.0.0.1",
		"--advertise-address", "127.0.0.1",
		"--secure-port", strconv.Itoa(pm["apiserver"]),
		"--cert-dir", in.path("pki"),
		"--tls-cert-file", pki("apiserver.crt"),
		"--tls-private-key-file", pki("apiserver.key"),
		"--client-ca-file", pki("ca.crt"),
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file", pki("sa.pub"),
		"--service-account-signing-key-file", pki("sa.key"),
		"--service-cluster-ip-range", "10.96.0.0/16",
		"--authorization-mode", "Node,RBAC",
		"--enable-admission-plugins", "NodeRestriction",
		"--allow-privileged=true",
		"--profiling=false",
		// The "kubernetes" Service's endpoints would be 127.0.0.1, which
		// Endpoints validation rejects; nothing in-cluster needs them.
		"--endpoint-reconciler-type", "none",
		"--requestheader-client-ca-file", pki("front-proxy-ca.crt"),
		"--requestheader-allowed-names", "front-proxy-client",
		"--requestheader-username-headers", "X-Remote-User",
		"--requestheader-group-headers", "X-Remote-Group",
		"--requestheader-extra-headers-prefix", "X-Remote-Extra-",
		"--proxy-client-cert-file", pki("front-proxy-client.crt"),
		"--proxy-client-key-file", pki("front-proxy-client.key"),
	}
	if audit {
		// Who asked for what, for benchmarks (bench/vs-flux counts requests
		// by user agent): the apiserver's own request metrics have no
		// client label. One line per request and stage; RequestReceived is
		// left out, so a request is its ResponseComplete line (a watch also
		// its ResponseStarted line).
		policy := in.path("audit-policy.yaml")
		if err := os.WriteFile(policy, []byte(auditPolicy), 0o600); err != nil {
			return fail(err)
		}
		apiserverArgs = append(apiserverArgs,
			"--audit-policy-file", policy,
			"--audit-log-path", in.path("logs", "audit.log"),
			"--audit-log-format", "json",
			"--audit-log-maxsize", "0")
	}
	if err := s.spawn("apiserver", apiserverArgs...); err != nil {
		return fail(err)
	}
	if err := s.waitFor("apiserver", "apiserver /readyz", deadline, func() error { return in.readyz(server) }); err != nil {
		return fail(err)
	}

	progress("kube-apiserver is ready")
	// kube-controller-manager, kube-scheduler, nodesim
	progress("starting kube-controller-manager, kube-scheduler, nodesim (%d nodes)", nodes)
	kcmKC := in.path("controller-manager.kubeconfig")
	if err := s.spawn("controller-manager",
		"--kubeconfig", kcmKC,
		"--authentication-kubeconfig", kcmKC,
		"--authorization-kubeconfig", kcmKC,
		"--bind-address", "127.0.0.1",
		"--secure-port", strconv.Itoa(pm["controller-manager"]),
		"--leader-elect=false",
		"--use-service-account-credentials=true",
		"--service-account-private-key-file", pki("sa.key"),
		"--root-ca-file", pki("ca.crt"),
		"--cluster-signing-cert-file", pki("ca.crt"),
		"--cluster-signing-key-file", pki("ca.key"),
		"--profiling=false",
	); err != nil {
		return fail(err)
	}
	schedKC := in.path("scheduler.kubeconfig")
	if err := s.spawn("scheduler",
		"--kubeconfig", schedKC,
		"--authentication-kubeconfig", schedKC,
		"--authorization-kubeconfig", schedKC,
		"--bind-address", "127.0.0.1",
		"--secure-port", strconv.Itoa(pm["scheduler"]),
		"--leader-elect=false",
		"--profiling=false",
	); err != nil {
		return fail(err)
	}
	if err := s.spawn("nodesim", "--kubeconfig", in.kubeconfigPath(), "--nodes", strconv.Itoa(nodes)); err != nil {
		return fail(err)
	}

	cfg, err := clientcmd.BuildConfigFromFlags("", in.kubeconfigPath())
	if err != nil {
		return fail(err)
	}
	cfg.Timeout = 5 * time.Second
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fail(err)
	}
	ctx := context.Background()
	if err := s.waitFor("controller-manager", "default ServiceAccount", deadline, func() error {
		_, err := client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err
	}); err != nil {
		return fail(err)
	}
	progress("default ServiceAccount exists")
	if err := s.waitFor("nodesim", "a Ready, schedulable node", deadline, func() error {
		list, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		for _, n := range list.Items {
			if nodeSchedulable(&n) {
				return nil
			}
		}
		return fmt.Errorf("%d nodes, none Ready without taints yet", len(list.Items))
	}); err != nil {
		return fail(err)
	}

	progress("a node is Ready and schedulable")
	// A last look: everything still alive?
	select {
	case ev := <-s.exited:
		if ev.name == watchdogName {
			break
		}
		return fail(&componentError{ev.name, fmt.Errorf("exited during startup (%v)", ev.err)})
	default:
	}
	return st, false, nil
}

func allLive(live map[string]bool) bool {
	for _, c := range components {
		if !live[c] {
			return false
		}
	}
	return len(live) > 0
}

func nodeSchedulable(n *corev1.Node) bool {
	if n.Spec.Unschedulable {
		return false
	}
	for _, t := range n.Spec.Taints {
		if t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute {
			return false
		}
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// ---------------------------------------------------------------- down ---

// Down implements "down".
func Down(args []string) int {
	in, err := parseCommon(flag.NewFlagSet("down", flag.ContinueOnError), args)
	if err != nil {
		logf("%v", err)
		return 2
	}
	return in.down()
}

func (in *instance) down() int {
	unlock, err := in.lock()
	if err != nil {
		logf("lock: %v", err)
		return 1
	}
	if _, err := os.Stat(in.dir); os.IsNotExist(err) {
		unlock(true)
		logf("instance %q is not running", in.name)
		return 0
	}
	if err := in.stop(); err != nil {
		unlock(false)
		logf("down: %v", err)
		return 1
	}
	unlock(true)
	logf("instance %q stopped", in.name)
	return 0
}

// -------------------------------------------------------------- status ---

// Status implements "status".
func Status(args []string) int {
	in, err := parseCommon(flag.NewFlagSet("status", flag.ContinueOnError), args)
	if err != nil {
		logf("%v", err)
		return 2
	}
	if _, err := os.Stat(in.dir); os.IsNotExist(err) {
		fmt.Printf("instance %q: not running (%s does not exist)\n", in.name, in.dir)
		return 1
	}
	live, herr := in.health()
	pids := in.pids()
	fmt.Printf("instance %q in %s\n", in.name, in.dir)
	for _, c := range append(append([]string{}, components...), watchdogName) {
		pid, ok := pids[c]
		if !ok {
			continue
		}
		s := "dead"
		if live[c] {
			s = "running"
		}
		fmt.Printf("  %-20s %-8s pid %d\n", c, s, pid)
	}
	if herr != nil {
		fmt.Printf("  unhealthy: %v\n", herr)
		return 1
	}
	fmt.Printf("  apiserver            ready\n")
	fmt.Println(in.exportLine())
	return 0
}

// Env implements "env".
func Env(args []string) int {
	in, err := parseCommon(flag.NewFlagSet("env", flag.ContinueOnError), args)
	if err != nil {
		logf("%v", err)
		return 2
	}
	if _, err := in.health(); err != nil {
		logf("instance %q is not running: %v", in.name, err)
		return 1
	}
	fmt.Println(in.exportLine())
	return 0
}

// ------------------------------------------------------------ watchdog ---

// Watchdog implements the hidden "watchdog" command: it downs the instance
// in --dir when --owner-pid exits (or is replaced by another process).
func Watchdog(args []string) int {
	fs := flag.NewFlagSet("watchdog", flag.ContinueOnError)
	dir := fs.String("dir", "", "instance state directory")
	owner := fs.Int("owner-pid", 0, "owner process")
	ownerStart := fs.String("owner-start", "", "owner start time (from /proc/<pid>/stat)")
	if err := fs.Parse(args); err != nil || *dir == "" || *owner == 0 {
		logf("watchdog: --dir and --owner-pid are required")
		return 2
	}
	in := &instance{name: filepath.Base(*dir), dir: *dir}
	logf("watchdog: will stop %s when pid %d exits", *dir, *owner)
	for {
		time.Sleep(500 * time.Millisecond)
		if _, err := os.Stat(*dir); os.IsNotExist(err) {
			logf("watchdog: instance dir is gone, exiting")
			return 0
		}
		if !alive(*owner) || (*ownerStart != "" && procStartTime(*owner) != *ownerStart) {
			logf("watchdog: owner pid %d exited, stopping instance", *owner)
			return in.down()
		}
	}
}
