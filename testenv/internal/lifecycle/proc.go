package lifecycle

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func encodeB64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// cacheRoot is $XDG_CACHE_HOME/sluice/testenv or ~/.cache/sluice/testenv.
func cacheRoot() string {
	if x := os.Getenv("XDG_CACHE_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "sluice", "testenv")
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		home = os.TempDir()
	}
	return filepath.Join(home, ".cache", "sluice", "testenv")
}

func defaultDir(name string) string { return filepath.Join(cacheRoot(), "run", name) }

// freePorts reserves n distinct free TCP ports on 127.0.0.1, outside the
// kernel's ephemeral range. A port from that range (what ":0" hands out)
// can be taken, while its server is down for a restart, by an outgoing
// connection, or by a client's TCP self-connect as it retries towards the
// dead port; the restarted apiserver then fails with "address already in
// use". Ports below (or above) the range are never handed out implicitly.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	lo, hi := ephemeralRange()
	var candidates []int
	for p := 10000; p < 65536; p++ {
		if p < lo || p > hi {
			candidates = append(candidates, p)
		}
	}
	rand.Shuffle(len(candidates), func(i, j int) { candidates[i], candidates[j] = candidates[j], candidates[i] })
	var ports []int
	for _, p := range candidates {
		if len(ports) == n {
			break
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		ls = append(ls, l)
		ports = append(ports, p)
	}
	// Only on a machine whose ephemeral range covers everything: the old way.
	for len(ports) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// ephemeralRange is net.ipv4.ip_local_port_range (Linux's default when it
// cannot be read).
func ephemeralRange() (int, int) {
	lo, hi := 32768, 60999
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return lo, hi
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return lo, hi
	}
	l, err1 := strconv.Atoi(f[0])
	h, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || l > h {
		return lo, hi
	}
	return l, h
}

// procCmdline returns the NUL-separated command line of pid, or nil.
func procCmdline(pid int) []byte {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return nil
	}
	return b
}

// procState returns the state letter from /proc/<pid>/stat ("" if gone).
func procState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return ""
	}
	return string(b[i+2])
}

// procStartTime returns field 22 (starttime) of /proc/<pid>/stat, or "".
func procStartTime(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); starttime is field 22 -> f[19].
	if len(f) < 20 {
		return ""
	}
	return f[19]
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	st := procState(pid)
	return st != "" && st != "Z" && st != "X"
}

// ours reports whether pid is alive and is a sluice-testenv process that
// belongs to the instance in dir.
func ours(pid int, dir string) bool {
	if pid <= 1 || pid == os.Getpid() || !alive(pid) {
		return false
	}
	cl := procCmdline(pid)
	return bytes.Contains(cl, []byte("sluice-testenv")) && bytes.Contains(cl, []byte(dir))
}

func readPid(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return pid
}

// killAll stops the given pids (SIGTERM, then SIGKILL after grace) and
// waits until they are gone. Only pids for which ours() holds are touched.
func killAll(pids []int, dir string, grace time.Duration) {
	var live []int
	for _, pid := range pids {
		if ours(pid, dir) {
			_ = syscall.Kill(pid, syscall.SIGTERM)
			live = append(live, pid)
		}
	}
	live = waitGone(live, grace)
	for _, pid := range live {
		if ours(pid, dir) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	waitGone(live, 5*time.Second)
}

// waitGone polls until all pids are dead or timeout; returns the survivors.
func waitGone(pids []int, timeout time.Duration) []int {
	deadline := time.Now().Add(timeout)
	for {
		var still []int
		for _, pid := range pids {
			if alive(pid) {
				still = append(still, pid)
			}
		}
		if len(still) == 0 || time.Now().After(deadline) {
			return still
		}
		pids = still
		time.Sleep(50 * time.Millisecond)
	}
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// lockFile takes an exclusive flock on path, blocking. The returned
// function releases it; with remove=true it also deletes the lock file
// (safe: lockers re-check that the path still names the inode they locked).
func lockFile(path string) (func(remove bool), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	for {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			return nil, err
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			f.Close()
			return nil, err
		}
		var held, now syscall.Stat_t
		if syscall.Fstat(int(f.Fd()), &held) != nil || syscall.Stat(path, &now) != nil ||
			held.Ino != now.Ino || held.Dev != now.Dev {
			f.Close() // removed or replaced while we waited: lock the new one
			continue
		}
		return func(remove bool) {
			if remove {
				_ = os.Remove(path)
			}
			_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
			f.Close()
		}, nil
	}
}

// cloexecInherited marks every inherited file descriptor above stderr
// close-on-exec, so that the detached components never keep a caller's pipe
// (e.g. the one a test reads "up"'s stdout from) open.
func cloexecInherited() {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
}
