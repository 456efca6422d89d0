//go:build tools

// Package tools pins the Kubernetes commands the devstack builds, so one 'go build' of them all resolves from this
// module and shares its compile: the API server, and a real node's kubelet, controller manager and scheduler.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
