// Package deploytests checks the deployment artefacts that cannot be run on
// a machine without a cluster or a Docker engine:
//
//   - the Helm chart in deployments/helm/merch-shop: its rendered manifests
//     (written by scripts/deploy-check.sh into $MERCH_RENDERED_DIR) are decoded
//     strictly into the Kubernetes API types (an unknown field or kind fails)
//     and checked for the invariants of the chart (probes, resources,
//     non-root, matching selectors, NetworkPolicies, HPA, PDB, no secret
//     values, pinned images);
//   - docker-compose.yml, loaded with the compose-spec loader.
//
// Without MERCH_RENDERED_DIR the chart tests skip, saying so; run
// scripts/deploy-check.sh to render the chart and run them all.
package deploytests
