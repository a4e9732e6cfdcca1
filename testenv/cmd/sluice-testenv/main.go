// Command sluice-testenv is a multi-call binary that runs a real, local
// Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler) plus a node/pod status simulator, for sluice's tests.
//
// Each component runs in its own process (started by "up"), so the global
// state of the linked Kubernetes commands (flags, metrics, feature gates)
// never meets: main only ever calls the one command asked for.
package main

import (
	"fmt"
	"os"
	_ "time/tzdata" // CronJob time zones

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/component-base/version"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	kcm "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"

	"github.com/sluice-gitops/sluice/testenv/internal/etcd"
	"github.com/sluice-gitops/sluice/testenv/internal/lifecycle"
	"github.com/sluice-gitops/sluice/testenv/internal/nodesim"
	"github.com/sluice-gitops/sluice/testenv/internal/smoke"
)

const usage = `usage: sluice-testenv <command> [flags]

Lifecycle:
  up       [--name NAME] [--dir DIR] [--nodes N] [--owner-pid PID] [--timeout 90s]
           start an instance; prints "export KUBECONFIG=..." on stdout
  down     [--name NAME] [--dir DIR]   stop an instance and remove its state
  status   [--name NAME] [--dir DIR]   show component state; exit 0 if healthy
  env      [--name NAME] [--dir DIR]   print the export line of a running instance
  restart  [--name NAME] [--dir DIR] [--component apiserver] [--down-for 0s] [--kill]
           stop one component and start it again as it was; waits until it serves
  smoke    [--kubeconfig FILE]         developer self-check against an instance
  version                              print the Kubernetes version built in

Components (started by "up"):
  etcd, apiserver, controller-manager, scheduler, nodesim, watchdog
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	sub, args := os.Args[1], os.Args[2:]
	// The Kubernetes commands parse os.Args[1:] themselves.
	os.Args = append([]string{"sluice-testenv " + sub}, args...)
	switch sub {
	case "up":
		os.Exit(lifecycle.Up(args))
	case "down":
		os.Exit(lifecycle.Down(args))
	case "status":
		os.Exit(lifecycle.Status(args))
	case "env":
		os.Exit(lifecycle.Env(args))
	case "restart":
		os.Exit(lifecycle.Restart(args))
	case "watchdog":
		os.Exit(lifecycle.Watchdog(args))
	case "smoke":
		os.Exit(smoke.Main(args))
	case "etcd":
		os.Exit(etcd.Main(args))
	case "nodesim":
		os.Exit(nodesim.Main(args))
	case "apiserver":
		os.Exit(cli.Run(apiserver.NewAPIServerCommand()))
	case "controller-manager":
		os.Exit(cli.Run(kcm.NewControllerManagerCommand()))
	case "scheduler":
		os.Exit(cli.Run(scheduler.NewSchedulerCommand()))
	case "version", "--version":
		fmt.Println(version.Get().GitVersion)
	case "-h", "--help", "help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "sluice-testenv: unknown command %q\n\n%s", sub, usage)
		os.Exit(2)
	}
}
