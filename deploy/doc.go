// Package deploy holds Gatehouse's packaging, which is not Go code: the
// container image (Dockerfile, Dockerfile.dockerignore), the systemd unit
// (gatehouse.service) and its settings file (gatehouse.env.example). Its
// tests check their shape, build the binary exactly as the Dockerfile does
// and run it as the image's entrypoint and the unit's ExecStart would. See
// docs/deployment-packaging.md.
package deploy
