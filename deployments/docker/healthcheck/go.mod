// The container health probe: standard library only, so the images need no
// shell or curl. Its own module (outside go.work) so it builds in a second
// with GOWORK=off; scripts/deploy-check.sh vets and tests it.
module github.com/merchshop/merchshop/deployments/docker/healthcheck

go 1.26.0
