package nodesim

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
)

func newPod(name string, mutate func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Generation: 1},
		Spec: corev1.PodSpec{
			NodeName:      "sim-node-1",
			RestartPolicy: corev1.RestartPolicyAlways,
			Containers:    []corev1.Container{{Name: "app", Image: "nginx:1.27"}},
		},
	}
	p.UID = types.UID("uid-" + p.Name)
	if mutate != nil {
		mutate(p)
	}
	return p
}

func cond(st *corev1.PodStatus, t corev1.PodConditionType) corev1.ConditionStatus {
	for _, c := range st.Conditions {
		if c.Type == t {
			return c.Status
		}
	}
	return ""
}

func sim() *Sim { return New(fake.NewSimpleClientset(), []string{"sim-node-0", "sim-node-1"}) }

func TestRunningAndReady(t *testing.T) {
	s := sim()
	now := time.Now()
	st, requeue := s.desiredStatus(newPod("web", nil), now)
	if st.Phase != corev1.PodRunning || requeue != 0 {
		t.Fatalf("phase %s requeue %v", st.Phase, requeue)
	}
	if st.HostIP != "10.240.0.11" || st.PodIP != "10.244.1.2" || len(st.PodIPs) != 1 {
		t.Fatalf("ips: host %s pod %s", st.HostIP, st.PodIP)
	}
	for _, c := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodInitialized, corev1.PodReadyToStartContainers, corev1.ContainersReady, corev1.PodReady} {
		if cond(st, c) != corev1.ConditionTrue {
			t.Errorf("condition %s = %q", c, cond(st, c))
		}
	}
	cs := st.ContainerStatuses[0]
	if !cs.Ready || !*cs.Started || cs.State.Running == nil || cs.ContainerID == "" ||
		cs.ImageID != "docker.io/library/nginx@sha256:"+cs.ImageID[len("docker.io/library/nginx@sha256:"):] {
		t.Fatalf("container status %+v", cs)
	}
	// Stable: computing again from the result changes nothing.
	p := newPod("web", nil)
	p.Status = *st
	again, _ := s.desiredStatus(p, now.Add(3*time.Second))
	if again.PodIP != st.PodIP || !again.StartTime.Equal(st.StartTime) || again.Conditions[0].LastTransitionTime != st.Conditions[0].LastTransitionTime {
		t.Fatalf("status not stable:\n%+v\n%+v", st, again)
	}
}

func TestJobSucceedsAfterDelay(t *testing.T) {
	s := sim()
	now := time.Now()
	p := newPod("job", func(p *corev1.Pod) { p.Spec.RestartPolicy = corev1.RestartPolicyNever })
	st, requeue := s.desiredStatus(p, now)
	if st.Phase != corev1.PodRunning || requeue <= 0 {
		t.Fatalf("first: phase %s requeue %v", st.Phase, requeue)
	}
	p.Status = *st
	st, _ = s.desiredStatus(p, now.Add(2*time.Second))
	if st.Phase != corev1.PodSucceeded {
		t.Fatalf("later: phase %s", st.Phase)
	}
	term := st.ContainerStatuses[0].State.Terminated
	if term == nil || term.ExitCode != 0 || term.Reason != "Completed" {
		t.Fatalf("terminated %+v", term)
	}
	if cond(st, corev1.PodReady) != corev1.ConditionFalse {
		t.Fatalf("ready should be false when completed")
	}
}

func TestHooks(t *testing.T) {
	s := sim()
	now := time.Now()
	nr := newPod("nr", func(p *corev1.Pod) { p.Annotations = map[string]string{AnnotationReady: "false"} })
	st, _ := s.desiredStatus(nr, now)
	if st.Phase != corev1.PodRunning || cond(st, corev1.PodReady) != corev1.ConditionFalse || st.ContainerStatuses[0].Ready {
		t.Fatalf("not-ready hook: %+v", st)
	}
	cr := newPod("cr", func(p *corev1.Pod) { p.Spec.Containers[0].Image = "example.com/sim-crashloop:1" })
	st, _ = s.desiredStatus(cr, now)
	w := st.ContainerStatuses[0].State.Waiting
	if st.Phase != corev1.PodRunning || w == nil || w.Reason != "CrashLoopBackOff" || st.ContainerStatuses[0].RestartCount < 1 {
		t.Fatalf("crashloop hook: %+v", st)
	}
	crNever := newPod("crn", func(p *corev1.Pod) {
		p.Spec.Containers[0].Image = "sim-crashloop"
		p.Spec.RestartPolicy = corev1.RestartPolicyNever
	})
	st, _ = s.desiredStatus(crNever, now)
	if st.Phase != corev1.PodFailed {
		t.Fatalf("crashloop with Never: phase %s", st.Phase)
	}
}

func TestInitContainersAndHostNetwork(t *testing.T) {
	s := sim()
	p := newPod("init", func(p *corev1.Pod) {
		p.Spec.HostNetwork = true
		p.Spec.InitContainers = []corev1.Container{
			{Name: "setup", Image: "busybox"},
			{Name: "sidecar", Image: "envoy", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)},
		}
	})
	st, _ := s.desiredStatus(p, time.Now())
	if st.PodIP != st.HostIP {
		t.Fatalf("hostNetwork pod IP %s != host IP %s", st.PodIP, st.HostIP)
	}
	if st.InitContainerStatuses[0].State.Terminated == nil || st.InitContainerStatuses[0].State.Terminated.Reason != "Completed" {
		t.Fatalf("init container: %+v", st.InitContainerStatuses[0])
	}
	if st.InitContainerStatuses[1].State.Running == nil || !st.InitContainerStatuses[1].Ready {
		t.Fatalf("sidecar: %+v", st.InitContainerStatuses[1])
	}
}

func TestIPAllocation(t *testing.T) {
	s := sim()
	a := newPod("a", nil)
	b := newPod("b", nil)
	ipA, ipB := s.allocIP(a), s.allocIP(b)
	if ipA == ipB {
		t.Fatalf("duplicate IP %s", ipA)
	}
	if s.allocIP(a) != ipA {
		t.Fatalf("IP of a pod must be stable")
	}
	s.releaseIP(a.UID)
	if s.used[ipA] {
		t.Fatalf("released IP still in use")
	}
}

func TestImageID(t *testing.T) {
	for in, prefix := range map[string]string{
		"nginx":                    "docker.io/library/nginx@sha256:",
		"nginx:1.27":               "docker.io/library/nginx@sha256:",
		"fluxcd/flux:v2":           "docker.io/fluxcd/flux@sha256:",
		"ghcr.io/a/b:v1":           "ghcr.io/a/b@sha256:",
		"localhost:5000/x:1":       "localhost:5000/x@sha256:",
		"registry:5000/x@sha256:1": "registry:5000/x@sha256:",
	} {
		if got := imageID(in); len(got) != len(prefix)+64 || got[:len(prefix)] != prefix {
			t.Errorf("imageID(%q) = %q, want prefix %q", in, got, prefix)
		}
	}
}

func TestReadinessGates(t *testing.T) {
	s := sim()
	p := newPod("gated", func(p *corev1.Pod) {
		p.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: "example.com/lb"}}
	})
	st, _ := s.desiredStatus(p, time.Now())
	if cond(st, corev1.PodReady) != corev1.ConditionFalse || cond(st, corev1.ContainersReady) != corev1.ConditionTrue {
		t.Fatalf("gate missing: ready=%s containersReady=%s", cond(st, corev1.PodReady), cond(st, corev1.ContainersReady))
	}
	p.Status = *st
	p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: "example.com/lb", Status: corev1.ConditionTrue})
	st, _ = s.desiredStatus(p, time.Now())
	if cond(st, corev1.PodReady) != corev1.ConditionTrue {
		t.Fatalf("gate true: ready=%s", cond(st, corev1.PodReady))
	}
}
