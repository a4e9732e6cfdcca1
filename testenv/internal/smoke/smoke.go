// Package smoke is a developer self-check for a running testenv instance:
// a Deployment rolls out (twice), a Job completes, a Service gets endpoints,
// and the nodesim test hooks behave.
package smoke

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
)

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "smoke: "+format+"\n", args...)
}

// Main runs the "smoke" subcommand.
func Main(args []string) int {
	fs := flag.NewFlagSet("smoke", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig (default $KUBECONFIG)")
	timeout := fs.Duration("timeout", 60*time.Second, "overall timeout")
	keep := fs.Bool("keep", false, "keep the test namespace")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *kubeconfig == "" {
		logf("--kubeconfig or $KUBECONFIG required")
		return 2
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		logf("%v", err)
		return 1
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		logf("%v", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	start := time.Now()
	if err := run(ctx, client, *keep); err != nil {
		logf("FAILED after %.1fs: %v", time.Since(start).Seconds(), err)
		return 1
	}
	logf("OK in %.1fs", time.Since(start).Seconds())
	return 0
}

func step(name string, f func() error) error {
	t := time.Now()
	if err := f(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	logf("%-45s %6.2fs", name, time.Since(t).Seconds())
	return nil
}

func poll(ctx context.Context, cond func(context.Context) (bool, error)) error {
	return wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, cond)
}

func run(ctx context.Context, c kubernetes.Interface, keep bool) error {
	ns := fmt.Sprintf("smoke-%d", time.Now().UnixNano()%1000000)
	labels := map[string]string{"app": "web"}
	if err := step("create namespace "+ns, func() error {
		_, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		return err
	}); err != nil {
		return err
	}
	if !keep {
		defer func() {
			_ = c.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
		}()
	}
	if err := step("default ServiceAccount in namespace", func() error {
		return poll(ctx, func(ctx context.Context) (bool, error) {
			_, err := c.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
			return err == nil, nil
		})
	}); err != nil {
		return err
	}

	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "web", Image: "nginx:1.27",
					Ports: []corev1.ContainerPort{{ContainerPort: 80}},
				}}},
			},
		},
	}
	rolledOut := func(ctx context.Context) (bool, error) {
		d, err := c.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		s := d.Status
		return s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == 2 &&
			s.Replicas == 2 && s.AvailableReplicas == 2 && s.ReadyReplicas == 2, nil
	}
	if err := step("deployment 2/2 available", func() error {
		if _, err := c.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
			return err
		}
		return poll(ctx, rolledOut)
	}); err != nil {
		return err
	}

	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(80)}}},
	}
	if err := step("service has 2 ready endpoints", func() error {
		if _, err := c.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			return err
		}
		return poll(ctx, func(ctx context.Context) (bool, error) {
			l, err := c.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=web"})
			if err != nil {
				return false, err
			}
			ready := 0
			for _, s := range l.Items {
				for _, e := range s.Endpoints {
					if e.Conditions.Ready != nil && *e.Conditions.Ready {
						ready++
					}
				}
			}
			return ready == 2, nil
		})
	}); err != nil {
		return err
	}

	if err := step("rollout of a new template (2 ReplicaSets)", func() error {
		patch := []byte(`{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.28"}]}}}}`)
		if _, err := c.AppsV1().Deployments(ns).Patch(ctx, "web", types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
			return err
		}
		return poll(ctx, func(ctx context.Context) (bool, error) {
			ok, err := rolledOut(ctx)
			if !ok || err != nil {
				return ok, err
			}
			rs, err := c.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
			if err != nil {
				return false, err
			}
			pods, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
			if err != nil {
				return false, err
			}
			if len(rs.Items) != 2 || len(pods.Items) != 2 {
				return false, nil
			}
			for _, p := range pods.Items {
				if p.Spec.Containers[0].Image != "nginx:1.28" {
					return false, nil
				}
			}
			return true, nil
		})
	}); err != nil {
		return err
	}

	if err := step("job completes", func() error {
		job := &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{Name: "once", Namespace: ns},
			Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers:    []corev1.Container{{Name: "main", Image: "busybox"}},
			}}},
		}
		if _, err := c.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{}); err != nil {
			return err
		}
		return poll(ctx, func(ctx context.Context) (bool, error) {
			j, err := c.BatchV1().Jobs(ns).Get(ctx, "once", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			for _, cond := range j.Status.Conditions {
				if cond.Type == batchv1.JobComplete && cond.Status == corev1.ConditionTrue {
					return true, nil
				}
			}
			return false, nil
		})
	}); err != nil {
		return err
	}

	podWith := func(name, image string, ann map[string]string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: ann},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: image}}},
		}
	}
	if err := step("hooks: not-ready annotation, crashloop image", func() error {
		if _, err := c.CoreV1().Pods(ns).Create(ctx, podWith("notready", "nginx", map[string]string{"sim.sluice.dev/ready": "false"}), metav1.CreateOptions{}); err != nil {
			return err
		}
		if _, err := c.CoreV1().Pods(ns).Create(ctx, podWith("crash", "example.com/sim-crashloop:1", nil), metav1.CreateOptions{}); err != nil {
			return err
		}
		return poll(ctx, func(ctx context.Context) (bool, error) {
			nr, err := c.CoreV1().Pods(ns).Get(ctx, "notready", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			cr, err := c.CoreV1().Pods(ns).Get(ctx, "crash", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			if nr.Status.Phase != corev1.PodRunning || len(nr.Status.ContainerStatuses) != 1 || nr.Status.ContainerStatuses[0].Ready {
				return false, nil
			}
			if len(cr.Status.ContainerStatuses) != 1 {
				return false, nil
			}
			w := cr.Status.ContainerStatuses[0].State.Waiting
			return w != nil && w.Reason == "CrashLoopBackOff", nil
		})
	}); err != nil {
		return err
	}

	if err := step("scale to 0 deletes pods", func() error {
		if _, err := c.AppsV1().Deployments(ns).Patch(ctx, "web", types.MergePatchType, []byte(`{"spec":{"replicas":0}}`), metav1.PatchOptions{}); err != nil {
			return err
		}
		return poll(ctx, func(ctx context.Context) (bool, error) {
			pods, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
			return err == nil && len(pods.Items) == 0, err
		})
	}); err != nil {
		return err
	}
	if !keep {
		if err := step("namespace deletion finishes", func() error {
			if err := c.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
				return err
			}
			return poll(ctx, func(ctx context.Context) (bool, error) {
				_, err := c.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
				return err != nil, nil
			})
		}); err != nil {
			return err
		}
	}
	return nil
}
