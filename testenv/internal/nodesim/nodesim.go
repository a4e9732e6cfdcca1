// Package nodesim simulates kubelets: it registers Nodes, keeps their
// Leases and conditions fresh, and drives the status of Pods bound to them
// as if their containers were really running.
//
// Test hooks (opt-in, per pod):
//   - annotation sim.sluice.dev/ready: "false"  -> Running but not Ready.
//   - a container image containing "sim-crashloop" -> that container is
//     waiting in CrashLoopBackOff (restartPolicy Never: the pod fails).
//
// Pods with restartPolicy Never/OnFailure (e.g. Jobs) succeed ~1 s after
// they start. Pods with a deletionTimestamp are deleted with grace period 0.
package nodesim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/component-base/version"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
)

const (
	// AnnotationReady opts a pod out of becoming Ready when set to "false".
	AnnotationReady = "sim.sluice.dev/ready"
	// CrashLoopImageMarker makes a container crash-loop when its image contains it.
	CrashLoopImageMarker = "sim-crashloop"

	leaseDuration      = 40 // seconds
	leaseRenewInterval = 10 * time.Second
	startDelay         = 150 * time.Millisecond
	completeDelay      = 1 * time.Second
)

// KubeletVersion is reported in node.status.nodeInfo (set at build time
// via -ldflags -X k8s.io/component-base/version.gitVersion=...).
var KubeletVersion = version.Get().GitVersion

// Main runs the "nodesim" subcommand.
func Main(args []string) int {
	fs := flag.NewFlagSet("nodesim", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig to use (required)")
	nodes := fs.Int("nodes", 2, "number of simulated nodes")
	prefix := fs.String("node-prefix", "sim-node-", "node name prefix")
	workers := fs.Int("workers", 4, "concurrent pod status workers")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *kubeconfig == "" {
		fmt.Fprintln(os.Stderr, "nodesim: --kubeconfig is required")
		return 2
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fmt.Fprintln(os.Stderr, "nodesim:", err)
		return 1
	}
	cfg.QPS = 200
	cfg.Burst = 400
	cfg.UserAgent = "sluice-testenv-nodesim"
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "nodesim:", err)
		return 1
	}

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()

	names := make([]string, *nodes)
	for i := range names {
		names[i] = fmt.Sprintf("%s%d", *prefix, i)
	}
	s := New(client, names)
	if err := s.Run(ctx, *workers); err != nil && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, "nodesim:", err)
		return 1
	}
	return 0
}

// Sim is the node and pod simulator.
type Sim struct {
	client kubernetes.Interface
	nodes  map[string]int // node name -> index
	names  []string
	start  time.Time

	queue     workqueue.TypedRateLimitingInterface[string]
	podLister corelisters.PodLister

	mu     sync.Mutex
	ips    map[string]string // pod UID -> IP
	used   map[string]bool   // IP -> in use
	cursor []int             // per node allocation cursor
}

// New returns a simulator for the given node names.
func New(client kubernetes.Interface, names []string) *Sim {
	s := &Sim{
		client: client,
		nodes:  map[string]int{},
		names:  names,
		start:  time.Now(),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "nodesim"}),
		ips:    map[string]string{},
		used:   map[string]bool{},
		cursor: make([]int, len(names)),
	}
	for i, n := range names {
		s.nodes[n] = i
	}
	return s
}

func nodeIP(i int) string     { return fmt.Sprintf("10.240.0.%d", 10+i) }
func podCIDR(i int) string    { return fmt.Sprintf("10.244.%d.0/24", i) }
func podIPAt(i, n int) string { return fmt.Sprintf("10.244.%d.%d", i, n) }

// Run registers nodes and drives pods until ctx is done.
func (s *Sim) Run(ctx context.Context, workers int) error {
	defer s.queue.ShutDown()

	// Register nodes (retrying until the apiserver accepts them).
	for i, name := range s.names {
		if err := wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
			if err := s.ensureNode(ctx, i, name); err != nil {
				klog.ErrorS(err, "registering node", "node", name)
				return false, nil
			}
			return true, nil
		}); err != nil {
			return err
		}
		klog.InfoS("registered node", "node", name)
	}

	// Heartbeats: leases every 10 s, node status refreshed alongside.
	go wait.UntilWithContext(ctx, func(ctx context.Context) {
		for i, name := range s.names {
			if err := s.renewLease(ctx, name); err != nil {
				klog.ErrorS(err, "renewing lease", "node", name)
			}
			if err := s.heartbeatNode(ctx, i, name); err != nil {
				klog.ErrorS(err, "updating node status", "node", name)
			}
		}
	}, leaseRenewInterval)

	factory := informers.NewSharedInformerFactoryWithOptions(s.client, 10*time.Minute,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermNotEqualSelector("spec.nodeName", "").String()
		}))
	podInformer := factory.Core().V1().Pods()
	s.podLister = podInformer.Lister()
	enqueue := func(obj interface{}, delay time.Duration) {
		pod, ok := obj.(*corev1.Pod)
		if !ok {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				pod, ok = tomb.Obj.(*corev1.Pod)
				if !ok {
					return
				}
			} else {
				return
			}
		}
		if _, mine := s.nodes[pod.Spec.NodeName]; !mine {
			return
		}
		key, err := cache.MetaNamespaceKeyFunc(pod)
		if err != nil {
			return
		}
		s.queue.AddAfter(key, delay)
	}
	if _, err := podInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj interface{}) { enqueue(obj, startDelay) },
		UpdateFunc: func(_, obj interface{}) { enqueue(obj, startDelay) },
		DeleteFunc: func(obj interface{}) {
			if pod, ok := obj.(*corev1.Pod); ok {
				s.releaseIP(pod.UID)
			} else if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				if pod, ok := tomb.Obj.(*corev1.Pod); ok {
					s.releaseIP(pod.UID)
				}
			}
		},
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), podInformer.Informer().HasSynced) {
		return ctx.Err()
	}
	// Re-learn IPs of pods that already run on our nodes (nodesim restart).
	if pods, err := s.podLister.List(labels.Everything()); err == nil {
		s.mu.Lock()
		for _, p := range pods {
			if p.Status.PodIP != "" && !p.Spec.HostNetwork {
				s.ips[string(p.UID)] = p.Status.PodIP
				s.used[p.Status.PodIP] = true
			}
		}
		s.mu.Unlock()
	}
	klog.InfoS("pod informer synced, simulating", "nodes", s.names)

	for i := 0; i < workers; i++ {
		go wait.UntilWithContext(ctx, s.worker, time.Second)
	}
	<-ctx.Done()
	return nil
}

func (s *Sim) worker(ctx context.Context) {
	for {
		key, quit := s.queue.Get()
		if quit {
			return
		}
		requeue, err := s.syncPod(ctx, key)
		switch {
		case err != nil:
			if !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
				klog.ErrorS(err, "syncing pod", "pod", key)
			}
			s.queue.AddRateLimited(key)
		case requeue > 0:
			s.queue.Forget(key)
			s.queue.AddAfter(key, requeue)
		default:
			s.queue.Forget(key)
		}
		s.queue.Done(key)
	}
}

// ---------------------------------------------------------------- nodes ---

func (s *Sim) nodeConditions(now metav1.Time, old []corev1.NodeCondition) []corev1.NodeCondition {
	mk := func(t corev1.NodeConditionType, st corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
		c := corev1.NodeCondition{Type: t, Status: st, Reason: reason, Message: msg,
			LastHeartbeatTime: now, LastTransitionTime: now}
		for _, o := range old {
			if o.Type == t && o.Status == st {
				c.LastTransitionTime = o.LastTransitionTime
			}
		}
		return c
	}
	return []corev1.NodeCondition{
		mk(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
		mk(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
		mk(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
		mk(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status (sluice-testenv nodesim)"),
	}
}

func (s *Sim) nodeStatus(i int, name string, old *corev1.NodeStatus) corev1.NodeStatus {
	res := corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("16"),
		corev1.ResourceMemory:           resource.MustParse("64Gi"),
		corev1.ResourcePods:             resource.MustParse("110"),
		corev1.ResourceEphemeralStorage: resource.MustParse("100Gi"),
	}
	var oldConds []corev1.NodeCondition
	if old != nil {
		oldConds = old.Conditions
	}
	id := sha256.Sum256([]byte(name))
	return corev1.NodeStatus{
		Capacity:    res,
		Allocatable: res.DeepCopy(),
		Phase:       corev1.NodeRunning,
		Conditions:  s.nodeConditions(metav1.Now(), oldConds),
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: nodeIP(i)},
			{Type: corev1.NodeHostName, Address: name},
		},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: 10250}},
		NodeInfo: corev1.NodeSystemInfo{
			MachineID:               hex.EncodeToString(id[:16]),
			SystemUUID:              hex.EncodeToString(id[16:]),
			BootID:                  fmt.Sprintf("%x", s.start.UnixNano()),
			KernelVersion:           "6.1.0-sim",
			OSImage:                 "sluice-testenv nodesim",
			ContainerRuntimeVersion: "containerd://2.1.0",
			KubeletVersion:          KubeletVersion,
			KubeProxyVersion:        "",
			OperatingSystem:         "linux",
			Architecture:            "amd64",
		},
	}
}

func (s *Sim) ensureNode(ctx context.Context, i int, name string) error {
	nodes := s.client.CoreV1().Nodes()
	node, err := nodes.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		node = &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{
				Name: name,
				Labels: map[string]string{
					"kubernetes.io/hostname":           name,
					"kubernetes.io/os":                 "linux",
					"kubernetes.io/arch":               "amd64",
					"beta.kubernetes.io/os":            "linux",
					"beta.kubernetes.io/arch":          "amd64",
					"node.kubernetes.io/instance-type": "sim",
					"sim.sluice.dev/node":              "true",
				},
				Annotations: map[string]string{
					"node.alpha.kubernetes.io/ttl": "0",
				},
			},
			Spec: corev1.NodeSpec{PodCIDR: podCIDR(i), PodCIDRs: []string{podCIDR(i)}},
		}
		node, err = nodes.Create(ctx, node, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
		if err != nil {
			node, err = nodes.Get(ctx, name, metav1.GetOptions{})
		}
	}
	if err != nil {
		return err
	}
	node.Status = s.nodeStatus(i, name, &node.Status)
	if _, err := nodes.UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		return err
	}
	return s.renewLease(ctx, name)
}

func (s *Sim) heartbeatNode(ctx context.Context, i int, name string) error {
	node, err := s.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return s.ensureNode(ctx, i, name)
	}
	if err != nil {
		return err
	}
	node.Status = s.nodeStatus(i, name, &node.Status)
	_, err = s.client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
	return err
}

func (s *Sim) renewLease(ctx context.Context, name string) error {
	leases := s.client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(time.Now())
	lease, err := leases.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		node, err := s.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		lease = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{
				Name:      name,
				Namespace: corev1.NamespaceNodeLease,
				OwnerReferences: []metav1.OwnerReference{{
					APIVersion: "v1", Kind: "Node", Name: name, UID: node.UID,
				}},
			},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity:       ptr.To(name),
				LeaseDurationSeconds: ptr.To[int32](leaseDuration),
				RenewTime:            &now,
			},
		}
		_, err = leases.Create(ctx, lease, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	lease.Spec.HolderIdentity = ptr.To(name)
	lease.Spec.LeaseDurationSeconds = ptr.To[int32](leaseDuration)
	lease.Spec.RenewTime = &now
	_, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
	return err
}

// ----------------------------------------------------------------- pods ---

func (s *Sim) allocIP(pod *corev1.Pod) string {
	if pod.Spec.HostNetwork {
		return nodeIP(s.nodes[pod.Spec.NodeName])
	}
	if pod.Status.PodIP != "" {
		return pod.Status.PodIP
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	uid := string(pod.UID)
	if ip, ok := s.ips[uid]; ok {
		return ip
	}
	i := s.nodes[pod.Spec.NodeName]
	for n := 0; n < 253; n++ {
		s.cursor[i] = s.cursor[i]%253 + 1 // 2..254 (.1 is the "gateway")
		ip := podIPAt(i, s.cursor[i]+1)
		if !s.used[ip] {
			s.used[ip] = true
			s.ips[uid] = ip
			return ip
		}
	}
	// Node full (more than 253 live pods): reuse, better than nothing.
	ip := podIPAt(i, 254)
	s.ips[uid] = ip
	return ip
}

func (s *Sim) releaseIP(uid types.UID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ip, ok := s.ips[string(uid)]; ok {
		delete(s.ips, string(uid))
		delete(s.used, ip)
	}
}

func (s *Sim) syncPod(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	pod, err := s.podLister.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if _, mine := s.nodes[pod.Spec.NodeName]; !mine {
		return 0, nil
	}

	if pod.DeletionTimestamp != nil {
		err := s.client.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{
			GracePeriodSeconds: ptr.To[int64](0),
			Preconditions:      &metav1.Preconditions{UID: &pod.UID},
		})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return 0, nil
		}
		if err == nil {
			s.releaseIP(pod.UID)
		}
		return 0, err
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return 0, nil // terminal, kubelet would not touch it again
	}

	status, requeue := s.desiredStatus(pod, time.Now())
	if apiequality.Semantic.DeepEqual(&pod.Status, status) {
		return requeue, nil
	}
	updated := pod.DeepCopy()
	updated.Status = *status
	_, err = s.client.CoreV1().Pods(ns).UpdateStatus(ctx, updated, metav1.UpdateOptions{})
	if err != nil {
		return 0, err
	}
	return requeue, nil
}

func containerID(pod *corev1.Pod, name string, restart int32) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("%s/%s/%d", pod.UID, name, restart)))
	return "containerd://" + hex.EncodeToString(h[:])
}

func imageID(image string) string {
	h := sha256.Sum256([]byte(image))
	ref := image
	if i := strings.Index(ref, "@"); i >= 0 {
		ref = ref[:i]
	} else if j := strings.LastIndex(ref, ":"); j > strings.LastIndex(ref, "/") {
		ref = ref[:j]
	}
	if !strings.Contains(ref, "/") {
		ref = "docker.io/library/" + ref
	} else if first := ref[:strings.Index(ref, "/")]; !strings.ContainsAny(first, ".:") && first != "localhost" {
		ref = "docker.io/" + ref
	}
	return ref + "@sha256:" + hex.EncodeToString(h[:])
}

func findStatus(list []corev1.ContainerStatus, name string) *corev1.ContainerStatus {
	for i := range list {
		if list[i].Name == name {
			return &list[i]
		}
	}
	return nil
}

// desiredStatus computes what a kubelet would report for pod right now, and
// when the pod should be looked at again (0: only on the next change).
func (s *Sim) desiredStatus(pod *corev1.Pod, nowT time.Time) (*corev1.PodStatus, time.Duration) {
	now := metav1.NewTime(nowT.Truncate(time.Second))
	old := &pod.Status
	st := old.DeepCopy()
	st.ObservedGeneration = pod.Generation

	ip := s.allocIP(pod)
	hostIP := nodeIP(s.nodes[pod.Spec.NodeName])
	st.HostIP = hostIP
	st.HostIPs = []corev1.HostIP{{IP: hostIP}}
	st.PodIP = ip
	st.PodIPs = []corev1.PodIP{{IP: ip}}
	if st.StartTime == nil {
		st.StartTime = &now
	}
	started := st.StartTime.Time

	runOnce := pod.Spec.RestartPolicy == corev1.RestartPolicyNever || pod.Spec.RestartPolicy == corev1.RestartPolicyOnFailure
	notReadyHook := pod.Annotations[AnnotationReady] == "false"
	var requeue time.Duration

	// Init containers: regular ones ran to completion, sidecars keep running.
	var inits []corev1.ContainerStatus
	for _, c := range pod.Spec.InitContainers {
		prev := findStatus(old.InitContainerStatuses, c.Name)
		cs := corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: imageID(c.Image),
			ContainerID: containerID(pod, c.Name, 0),
		}
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			cs.Ready, cs.Started = true, ptr.To(true)
			cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(started)}
		} else {
			cs.Ready, cs.Started = true, ptr.To(false)
			cs.State.Terminated = &corev1.ContainerStateTerminated{
				ExitCode: 0, Reason: "Completed",
				StartedAt: metav1.NewTime(started), FinishedAt: metav1.NewTime(started),
				ContainerID: cs.ContainerID,
			}
		}
		if prev != nil && prev.Image == c.Image {
			cs.State = prev.State
		}
		inits = append(inits, cs)
	}
	st.InitContainerStatuses = inits

	finished := runOnce && nowT.Sub(started) >= completeDelay
	if runOnce && !finished {
		requeue = completeDelay - nowT.Sub(started) + 50*time.Millisecond
	}
	allReady := true
	failed := false
	var statuses []corev1.ContainerStatus
	for _, c := range pod.Spec.Containers {
		prev := findStatus(old.ContainerStatuses, c.Name)
		restarts := int32(0)
		if prev != nil {
			restarts = prev.RestartCount
			if prev.Image != c.Image { // image changed in place: "restart"
				restarts++
				prev = nil
			}
		}
		cs := corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: imageID(c.Image),
			RestartCount: restarts, ContainerID: containerID(pod, c.Name, restarts),
		}
		startedAt := metav1.NewTime(started)
		if prev != nil && prev.State.Running != nil {
			startedAt = prev.State.Running.StartedAt
		} else if restarts > 0 {
			startedAt = now
		}
		crash := strings.Contains(c.Image, CrashLoopImageMarker)
		switch {
		case crash && pod.Spec.RestartPolicy == corev1.RestartPolicyNever:
			cs.Started = ptr.To(false)
			cs.State.Terminated = &corev1.ContainerStateTerminated{
				ExitCode: 1, Reason: "Error", StartedAt: startedAt, FinishedAt: startedAt,
				ContainerID: cs.ContainerID,
			}
			failed = true
			allReady = false
		case crash:
			if cs.RestartCount == 0 {
				cs.RestartCount = 1
			}
			cs.ContainerID = ""
			cs.Started = ptr.To(false)
			cs.State.Waiting = &corev1.ContainerStateWaiting{
				Reason:  "CrashLoopBackOff",
				Message: fmt.Sprintf("back-off 10s restarting failed container=%s pod=%s_%s(%s)", c.Name, pod.Name, pod.Namespace, pod.UID),
			}
			cs.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{
				ExitCode: 1, Reason: "Error", StartedAt: startedAt, FinishedAt: startedAt,
				ContainerID: containerID(pod, c.Name, cs.RestartCount-1),
			}
			if prev != nil && prev.LastTerminationState.Terminated != nil {
				cs.LastTerminationState = prev.LastTerminationState
			}
			allReady = false
		case finished:
			cs.Started = ptr.To(false)
			fin := metav1.NewTime(started.Add(completeDelay).Truncate(time.Second))
			cs.State.Terminated = &corev1.ContainerStateTerminated{
				ExitCode: 0, Reason: "Completed", StartedAt: startedAt, FinishedAt: fin,
				ContainerID: cs.ContainerID,
			}
			allReady = false
		default:
			cs.Started = ptr.To(true)
			cs.State.Running = &corev1.ContainerStateRunning{StartedAt: startedAt}
			cs.Ready = !notReadyHook
			if notReadyHook {
				allReady = false
			}
		}
		statuses = append(statuses, cs)
	}
	st.ContainerStatuses = statuses

	phase := corev1.PodRunning
	switch {
	case failed:
		phase = corev1.PodFailed
	case finished:
		phase = corev1.PodSucceeded
	}
	st.Phase = phase
	st.Reason, st.Message = "", ""

	readyReason, readyMsg := "", ""
	if !allReady {
		readyReason = "ContainersNotReady"
		var names []string
		for _, cs := range statuses {
			if !cs.Ready {
				names = append(names, cs.Name)
			}
		}
		readyMsg = fmt.Sprintf("containers with unready status: [%s]", strings.Join(names, " "))
		if phase == corev1.PodSucceeded || phase == corev1.PodFailed {
			readyReason, readyMsg = "PodCompleted", ""
		}
	}
	boolStatus := func(b bool) corev1.ConditionStatus {
		if b {
			return corev1.ConditionTrue
		}
		return corev1.ConditionFalse
	}
	// Readiness gates: Ready also needs every gate's condition to be True
	// (set by someone else, as with a real kubelet).
	podReady, podReason, podMsg := allReady, readyReason, readyMsg
	if allReady {
		var missing []string
		for _, g := range pod.Spec.ReadinessGates {
			ok := false
			for _, c := range st.Conditions {
				if c.Type == g.ConditionType && c.Status == corev1.ConditionTrue {
					ok = true
				}
			}
			if !ok {
				missing = append(missing, string(g.ConditionType))
			}
		}
		if len(missing) > 0 {
			podReady, podReason = false, "ReadinessGatesNotReady"
			podMsg = fmt.Sprintf("corresponding condition of pod readiness gate %q does not exist or is not True", strings.Join(missing, ", "))
		}
	}
	sandboxUp := phase == corev1.PodRunning
	setCond(st, pod.Generation, corev1.PodReadyToStartContainers, boolStatus(sandboxUp), "", "", now)
	initReason := ""
	if len(pod.Spec.InitContainers) > 0 && phase != corev1.PodRunning {
		initReason = "PodCompleted"
	}
	setCond(st, pod.Generation, corev1.PodInitialized, corev1.ConditionTrue, initReason, "", now)
	setCond(st, pod.Generation, corev1.PodReady, boolStatus(podReady), podReason, podMsg, now)
	setCond(st, pod.Generation, corev1.ContainersReady, boolStatus(allReady), readyReason, readyMsg, now)
	setCond(st, pod.Generation, corev1.PodScheduled, corev1.ConditionTrue, "", "", now)
	return st, requeue
}

func setCond(st *corev1.PodStatus, gen int64, t corev1.PodConditionType, status corev1.ConditionStatus, reason, msg string, now metav1.Time) {
	for i := range st.Conditions {
		c := &st.Conditions[i]
		if c.Type != t {
			continue
		}
		if c.Status != status {
			c.LastTransitionTime = now
		}
		c.Status, c.Reason, c.Message, c.ObservedGeneration = status, reason, msg, gen
		return
	}
	st.Conditions = append(st.Conditions, corev1.PodCondition{
		Type: t, Status: status, Reason: reason, Message: msg,
		LastTransitionTime: now, ObservedGeneration: gen,
	})
}
