#!/usr/bin/env bash
# Proves the package installs and runs as the README says: `npm pack`, then
# `npm install -g` of the tarball into a temporary prefix with an empty npm
# cache (so nothing of this tree, its node_modules or its devDependencies can
# help), then the installed `l3dsr`, found on the PATH and run from another
# directory, must rewrite a generated capture to exactly the bytes this
# tree's `l3dsr rewrite` writes, and answer --version and `help run`.
# CI runs it (.ci/run); a developer can too, as a normal user, after
# `npm ci`. Leaves nothing behind.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/l3dsr-pack-check.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "pack-check: $*" >&2; exit 1; }

cd "$root"
version=$(node -p 'require("./package.json").version')
npm pack --silent --pack-destination "$tmp" >/dev/null
tarball="$tmp/l3dsr-$version.tgz"
[ -f "$tarball" ] || fail "npm pack did not write $tarball"

# The install script builds the addon with node-gyp; npm >= 11.19 runs it
# either way, approving it by path only keeps its notice out of the log.
echo "pack-check: npm install -g --prefix $tmp/prefix (empty cache) $tarball"
(cd "$tmp" && npm install -g --no-fund --no-audit --prefix "$tmp/prefix" --cache "$tmp/cache" \
  --allow-scripts="file:$tarball" "$tarball")
installed="$tmp/prefix/lib/node_modules/l3dsr"
deps=$(cd "$installed/node_modules" && ls | tr '\n' ' ')
[ "$deps" = "ipaddr.js " ] || fail "installed dependencies are \"$deps\", expected only ipaddr.js"

export PATH="$tmp/prefix/bin:$PATH"
[ "$(command -v l3dsr)" = "$tmp/prefix/bin/l3dsr" ] || fail "l3dsr on the PATH is $(command -v l3dsr), not the installed one"

mkdir "$tmp/run"
cd "$tmp/run"
[ "$(l3dsr --version)" = "l3dsr $version" ] || fail "l3dsr --version says \"$(l3dsr --version)\", expected \"l3dsr $version\""
l3dsr help run >help-installed.txt
node "$root/bin/l3dsr.js" help run >help-tree.txt
cmp help-installed.txt help-tree.txt || fail "l3dsr help run differs between the package and the tree"
node --input-type=module -e "
  const { loadAddon } = await import('$installed/dist/src/tun/addon.js');
  if (typeof loadAddon().TunHandle !== 'function') throw new Error('the installed addon has no TunHandle');"

node --input-type=module -e "
  const { generateCapture } = await import('$root/dist/tools/capture/generate.js');
  await generateCapture('in.pcap', { packets: 2000, seed: 9, ipv6Share: 0.5, markedShare: 0.6, payloadBytes: [0, 1400] });"
rules=(--rule 1=203.0.113.10 --rule 1=2001:db8:203::10)
l3dsr rewrite -q "${rules[@]}" --verdicts verdicts-installed.jsonl in.pcap out-installed.pcap
node "$root/bin/l3dsr.js" rewrite -q "${rules[@]}" --verdicts verdicts-tree.jsonl in.pcap out-tree.pcap
cmp out-installed.pcap out-tree.pcap || fail "the installed l3dsr rewrote in.pcap differently from the tree's"
cmp verdicts-installed.jsonl verdicts-tree.jsonl || fail "the installed l3dsr's verdicts differ from the tree's"
cmp -s in.pcap out-tree.pcap && fail "the rewrite changed nothing: the comparison proves nothing"
echo "pack-check: ok: l3dsr $version from $(basename "$tarball") ($(du -k "$tarball" | cut -f1) KiB): --version, help run, the addon, and rewrite of $(wc -l <verdicts-tree.jsonl) packets identical to the tree's"
