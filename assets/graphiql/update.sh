#!/usr/bin/env bash
# Fetches the pinned GraphiQL and React releases from the npm registry and writes the files herald
# embeds: each minified file as npm ships it, a gzip'ed copy (-9, no name or time, so the same
# input gives the same bytes) and the packages' licenses. To update, change a version below, run
# this script, then rename the files in src/graphiql.rs (a stale name fails to compile).
set -euo pipefail
cd "$(dirname "$0")"

GRAPHIQL=3.9.0
REACT=18.3.1

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

unpack() { # package version -> directory
  (cd "$work" && npm pack --silent "$1@$2" >/dev/null)
  mkdir -p "$work/$1"
  tar -xzf "$work/$1-$2.tgz" -C "$work/$1" --strip-components=1
}
unpack graphiql "$GRAPHIQL"
unpack react "$REACT"
unpack react-dom "$REACT"

rm -f ./*.js ./*.css ./*.gz LICENSE-*
cp "$work/graphiql/graphiql.min.js" "graphiql-$GRAPHIQL.min.js"
cp "$work/graphiql/graphiql.min.css" "graphiql-$GRAPHIQL.min.css"
cp "$work/react/umd/react.production.min.js" "react-$REACT.production.min.js"
cp "$work/react-dom/umd/react-dom.production.min.js" "react-dom-$REACT.production.min.js"
cp "$work/graphiql/LICENSE" LICENSE-graphiql
cp "$work/react/LICENSE" LICENSE-react
cp "$work/react-dom/LICENSE" LICENSE-react-dom
for f in ./*.js ./*.css; do
  gzip -9 -n -k "$f"
done
sha256sum ./*.js ./*.css
