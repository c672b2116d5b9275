// Package deploy holds the deployment files of resque-expire (systemd
// units, Kubernetes manifests, Prometheus alert rules and their unit tests,
// a Grafana dashboard) and the tests that keep them valid; it has no code.
package deploy
