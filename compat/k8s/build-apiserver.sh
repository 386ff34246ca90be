#!/usr/bin/env bash
# Builds (once) a real kube-apiserver and kubectl for the Kubernetes suite; prints their folder.
#
# Both are ordinary Go module builds: a throwaway module that requires k8s.io/kubernetes at
# $KUBE_VERSION and maps each k8s.io/<staging> module, which the kubernetes go.mod replaces with
# ./staging/src/..., to its published v0.X.Y twin. The binaries are cached outside the work tree,
# keyed by version, so a machine pays the cold build once (kube-apiserver: 8-16 minutes on
# 2 cores, 1.8 GB peak; kubectl then ~2 more minutes):
#   ${PODID_CACHE:-$HOME/.cache/podid}/kubernetes-$KUBE_VERSION/{kube-apiserver,kubectl}
# No machine package is trusted for kubectl: the suite runs the kubectl of the same version.
set -euo pipefail

KUBE_VERSION=${KUBE_VERSION:-v1.34.2}
cache=${PODID_CACHE:-$HOME/.cache/podid}/kubernetes-$KUBE_VERSION
commands=(kube-apiserver kubectl)

missing=()
for c in "${commands[@]}"; do
  [[ -x $cache/$c ]] || missing+=("$c")
done
if ((${#missing[@]} == 0)); then
  echo "$cache"
  exit 0
fi

staging_version=v0.${KUBE_VERSION#v1.}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

echo "building ${missing[*]} $KUBE_VERSION (cold: 8-16 minutes; cached in $cache)" >&2
go mod init podid.local/kubernetes >&2
gomod=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')
{
  echo "require k8s.io/kubernetes $KUBE_VERSION"
  # Every `k8s.io/x => ./staging/src/k8s.io/x` line of kubernetes' own go.mod.
  sed -n 's#^\t\(k8s.io/[^ ]*\) => ./staging/src/.*#replace \1 => \1 '"$staging_version"'#p' "$gomod"
} >>go.mod
count=$(grep -c '^replace ' go.mod)
if ((count < 20)); then
  echo "expected the staging replace block in $gomod, found $count lines" >&2
  exit 1
fi
{
  printf '//go:build tools\n\npackage tools\n\n'
  for c in "${commands[@]}"; do printf 'import _ "k8s.io/kubernetes/cmd/%s"\n' "$c"; done
} >tools.go
go mod tidy >&2

pkg=k8s.io/component-base/version
minor=$(cut -d. -f2 <<<"$KUBE_VERSION")
ldflags="-s -w -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
mkdir -p "$cache"
for c in "${missing[@]}"; do
  CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$cache/$c.tmp" "k8s.io/kubernetes/cmd/$c" >&2
  mv "$cache/$c.tmp" "$cache/$c"
done
"$cache/kube-apiserver" --version >&2
echo "$cache"
